"""Watermark removal: Double-DIP on three photos sharing one semi-transparent white logo.

    OMP_WAIT_POLICY=PASSIVE flock /tmp/dd-bench.lock .venv/bin/python benchmarks/bench_watermark.py \
        [--seconds 120] [--size 128] [--threads 2] [--alpha 0.5] [--set key=value ...]

Data: ``napari_doubledip.samples.watermarked_photos`` (astronaut, coffee, chelsea with the same
white logo at opacity ``--alpha``). Reported: PSNR of the cleaned images (mean over the three),
of the watermarked inputs, of ``inpaint_biharmonic`` given the true mask (an oracle), of the
generators' own outputs (no inversion), and mask IoU (estimated mask > alpha/2 vs true opacity
> alpha/2).
"""

from __future__ import annotations

import argparse
import os
import platform

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bench_common import iou, parse_sets, psnr  # noqa: E402


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], help="task option key=value")
    args, _ = parser.parse_known_args(argv)
    options = parse_sets(args.set)

    from skimage.restoration import inpaint_biharmonic

    import napari_doubledip as dd
    from napari_doubledip import samples

    images, alpha_mask, clean = samples.watermarked_photos(size=args.size, alpha=args.alpha, seed=args.seed)
    true_region = alpha_mask > args.alpha / 2

    res = dd.remove_watermark(
        images, max_seconds=args.seconds, device="cpu", threads=args.threads, seed=args.seed, **options
    )
    cleaned = [psnr(r, c) for r, c in zip(res.images, clean, strict=True)]
    inputs = [psnr(i, c) for i, c in zip(images, clean, strict=True)]
    bih = [
        psnr(inpaint_biharmonic(i, alpha_mask > 0, channel_axis=-1), c)
        for i, c in zip(images, clean, strict=True)
    ]
    est_region = res.mask > args.alpha / 2
    mask_iou = iou(est_region, true_region)
    on_logo = float(np.median(res.mask[true_region]))
    off_logo = float(np.percentile(res.mask[alpha_mask == 0], 99))
    p = res.params
    rows = [
        f"| {', '.join(f'{v:.2f}' for v in cleaned)} (mean **{np.mean(cleaned):.2f}**) | "
        f"{np.mean(inputs):.2f} | {np.mean(bih):.2f} | {mask_iou:.3f} | median alpha on logo {on_logo:.3f} "
        f"(true {args.alpha}), 99th pct off logo {off_logo:.3f}; colour {np.round(res.colour, 3).tolist()}; "
        f"{p['steps_run']} steps, {p['seconds']:.0f} s, stop: {p['stop_reason']} |"
    ]
    report = "\n".join(
        [
            "### Watermark removal (three photos, one white logo)",
            "",
            f"`benchmarks/bench_watermark.py --seconds {args.seconds:g} --size {args.size} --threads "
            f"{args.threads} --alpha {args.alpha}{''.join(' --set ' + s for s in args.set)}`; "
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared), device cpu. "
            "PSNR in dB vs the clean photos (astronaut, coffee, chelsea).",
            "",
            "| Double-DIP cleaned | watermarked inputs | inpaint_biharmonic, true mask (oracle) | mask IoU | notes |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )
    print(report)
    return report


if __name__ == "__main__":
    main()
