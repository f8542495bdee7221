"""Watermark removal: Double-DIP on K photos sharing one watermark (of several kinds).

    OMP_WAIT_POLICY=PASSIVE flock /tmp/dd-bench.lock .venv/bin/python benchmarks/bench_watermark.py \
        [--seconds 120] [--size 128] [--threads 2] [--alpha 0.5] [--set key=value ...] \
        [--kind logo|text|colour|opaque] [--k 3] [--jitter 0] [--anchor centre|bottom-right|...]

Data: ``--kind logo`` (default) is ``napari_doubledip.samples.watermarked_photos`` (astronaut,
coffee, chelsea with the same white logo at opacity ``--alpha``); the other kinds are drawn by
``watermark_marks.py`` (thin white lettering with a dark outline and shadow, a logo in colour,
a fully opaque badge) on ``--k`` crops of scikit-image's photos (``--photos`` to choose others), ``--size`` plus up to
``--jitter`` pixels each way, the mark centred or by a corner (``--anchor``). Reported: PSNR of
the cleaned images (mean over the K), of the watermarked inputs, of ``inpaint_biharmonic`` given
the true mask (an oracle), and mask IoU (estimated mask > t vs true opacity > t, t = half the
mark's median opacity; on the first image).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bench_common import iou, parse_sets, psnr  # noqa: E402


def save_side_by_side(path: str, images: list, cleaned: list, mark: np.ndarray, side: int = 160) -> None:
    """Rows: the inputs, the cleaned images, the mark found over a checkerboard; ``side`` px per tile."""
    from skimage import io, transform

    def tile(img: np.ndarray) -> np.ndarray:
        return transform.resize(np.asarray(img, np.float64)[..., :3], (side, side), anti_aliasing=True)

    checker = ((np.indices(mark.shape[:2]) // 8).sum(0) % 2) * 0.25 + 0.5
    over = mark[..., 3:] * mark[..., :3] + (1 - mark[..., 3:]) * checker[..., None]
    pad = [np.ones((side, side, 3))] * (len(images) - 1)
    grid = np.concatenate(
        [
            np.concatenate([tile(i) for i in images], 1),
            np.concatenate([tile(c) for c in cleaned], 1),
            np.concatenate([tile(over), *pad], 1),
        ],
        0,
    )
    io.imsave(path, (np.clip(grid, 0, 1) * 255).astype(np.uint8), check_contrast=False)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], help="task option key=value")
    parser.add_argument("--kind", default="logo", help="logo, text, colour or opaque")
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--jitter", type=int, default=0, help="sizes differ by up to this many px")
    parser.add_argument("--anchor", default="centre", help="where the mark is: centre or a corner")
    parser.add_argument(
        "--photos", default="", help="scikit-image photos instead of astronaut,coffee,chelsea (e.g. held out)"
    )
    parser.add_argument("--save", default="", help="write a side-by-side PNG here (inputs, cleaned, mark)")
    args, _ = parser.parse_known_args(argv)
    options = parse_sets(args.set)

    from skimage.restoration import inpaint_biharmonic

    import napari_doubledip as dd
    from napari_doubledip import samples

    names = tuple(args.photos.split(",")) if args.photos else None
    if args.kind == "logo" and args.k == 3 and not args.jitter and args.anchor == "centre" and not names:
        images, alpha_mask, clean = samples.watermarked_photos(
            size=args.size, alpha=args.alpha, seed=args.seed
        )
        alphas = [alpha_mask] * 3
    else:
        from watermark_marks import make_mark, photos, stamp

        clean = photos(args.k, args.size, args.jitter, args.seed, names)
        mark_w, mark_a = make_mark(args.kind, (args.size, args.size))
        images, alphas = stamp(clean, mark_w, mark_a, args.anchor)
    level = float(np.median(alphas[0][alphas[0] > 0])) / 2

    start, load0 = time.strftime("%H:%M:%S", time.gmtime()), os.getloadavg()
    res = dd.remove_watermark(
        images, max_seconds=args.seconds, device="cpu", threads=args.threads, seed=args.seed, **options
    )
    load1 = os.getloadavg()
    cleaned = [psnr(r, c) for r, c in zip(res.images, clean, strict=True)]
    inputs = [psnr(i, c) for i, c in zip(images, clean, strict=True)]
    bih = [
        psnr(inpaint_biharmonic(i, a > 0, channel_axis=-1), c)
        for i, a, c in zip(images, alphas, clean, strict=True)
    ]
    (oy, ox), (my, mx) = res.offsets[0], res.mask.shape
    true_a = alphas[0][oy : oy + my, ox : ox + mx]
    true_region = true_a > level
    est_region = res.mask > level
    mask_iou = iou(est_region, true_region)
    on_logo = float(np.median(res.mask[true_region]))
    off_logo = float(np.percentile(res.mask[true_a == 0], 99))
    p = res.params
    if args.save:
        save_side_by_side(args.save, images, res.images, res.mark)
    rows = [
        f"| {', '.join(f'{v:.2f}' for v in cleaned)} (mean **{np.mean(cleaned):.2f}**) | "
        f"{np.mean(inputs):.2f} | {np.mean(bih):.2f} | {mask_iou:.3f} | median alpha on mark {on_logo:.3f} "
        f"(true {2 * level:.3f}), 99th pct off mark {off_logo:.3f}; colour {np.round(res.colour, 3).tolist()}; "
        f"{p['steps_run']} steps, {p['seconds']:.0f} s, stop: {p['stop_reason']}; aligned by "
        f"{p.get('aligned_by', 'centre')}; {start} UTC, load "
        f"{load0[0]:.2f} -> {load1[0]:.2f} |"
    ]
    report = "\n".join(
        [
            f"### Watermark removal ({args.k} photos, mark: {args.kind}, {args.anchor})",
            "",
            f"`benchmarks/bench_watermark.py --seconds {args.seconds:g} --size {args.size} --threads "
            f"{args.threads} --alpha {args.alpha} --kind {args.kind} --k {args.k} --jitter {args.jitter} "
            f"--anchor {args.anchor}{' --photos ' + args.photos if args.photos else ''}"
            f"{''.join(' --set ' + s for s in args.set)}`; "
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared), device cpu. "
            "PSNR in dB vs the clean photos.",
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
