"""Every task on a CUDA GPU: steps per second and quality in a fixed time, on the benchmark data.

    python benchmarks/bench_gpu.py [--seconds 20] [--device cuda] [--sizes 128,256,512]

Runs on the device the flag names (``cuda`` by default; ``cpu`` works, for checking the script).
Denoising (``samples.noisy_photo``) and inpainting (50% missing, ``samples.photo_with_missing_pixels``)
at each size in ``--sizes``; the four
Double-DIP tasks at 128² on the same synthetic data as their CPU benchmarks. Each run is
time-budgeted (``--seconds``), default settings, seed 0; the first run also pays for CUDA's
start-up, so a short warm-up run comes first. Prints one markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bench_common import iou, psnr  # noqa: E402


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sizes", default="128,256,512")
    args, _ = parser.parse_known_args(argv)

    import torch

    import napari_doubledip as dd
    from napari_doubledip import samples

    run = {"max_seconds": args.seconds, "device": args.device, "seed": 0, "early_stop": False}
    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else platform.machine()
    dd.denoise(samples.photo("astronaut", 64), steps=20, device=args.device)  # warm-up

    rows: list[str] = []

    def row(task: str, r, quality: str, baseline: str = "") -> None:
        p = r.params
        rate = p["steps_run"] / max(p["seconds"], 1e-9)
        rows.append(
            f"| {task} | {p['steps_run']} | {rate:.1f} | {quality} | {baseline} | {p.get('precision', '')} |"
        )
        print(rows[-1], flush=True)

    for size in (int(s) for s in args.sizes.split(",")):
        noisy, clean = samples.noisy_photo(size)
        r = dd.denoise(noisy, **run)
        row(f"denoise {size}²", r, f"{psnr(r.image, clean):.2f} dB", f"input {psnr(noisy, clean):.2f} dB")
        damaged, missing, clean = samples.photo_with_missing_pixels(size, 0.5)
        r = dd.inpaint(damaged, missing, **run)
        row(f"inpaint 50% {size}²", r, f"{psnr(r.image, clean):.2f} dB")

    image, truth, hints = samples.segmentation_composite(128, 0, "brick", "astronaut")
    r = dd.segment(image, hints, **run)
    row("segment, hinted (brick on astronaut) 128²", r, f"IoU {iou(r.labels, truth):.3f}")
    images, (a, b) = samples.mixtures(128)
    r = dd.separate(images, **run)
    best = max(
        (psnr(r.layers[0], a) + psnr(r.layers[1], b)) / 2, (psnr(r.layers[0], b) + psnr(r.layers[1], a)) / 2
    )
    row("separate, 2 mixtures 128²", r, f"{best:.2f} dB", f"alphas {np.round(r.alphas, 3).tolist()}")
    images, alpha, clean = samples.watermarked_photos(128)
    r = dd.remove_watermark(images, **run)
    cleaned = np.mean([psnr(x, c) for x, c in zip(r.images, clean, strict=True)])
    inputs = np.mean([psnr(x, c) for x, c in zip(images, clean, strict=True)])
    row(
        "watermark, 3 photos 128²",
        r,
        f"{cleaned:.2f} dB, mask IoU {iou(r.mask > 0.25, alpha > 0.25):.3f}",
        f"input {inputs:.2f} dB",
    )
    hazy, clean, _, _ = samples.hazy_photo(128)
    r = dd.dehaze(hazy, **run)
    row("dehaze (rocket) 128²", r, f"{psnr(r.image, clean):.2f} dB", f"input {psnr(hazy, clean):.2f} dB")

    report = "\n".join(
        [
            f"`benchmarks/bench_gpu.py --seconds {args.seconds:g} --device {args.device} --sizes {args.sizes}`; "
            f"{name}, torch {torch.__version__}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
            "",
            "| task | steps | steps/s | result | reference | precision |",
            "|---|---|---|---|---|---|",
            *rows,
        ]
    )
    print(report)
    return report


if __name__ == "__main__":
    main()
