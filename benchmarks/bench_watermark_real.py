r"""Watermark removal on real photos sharing one mark, at their own size: removal and harm.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_watermark_real.py FOLDER \
        [--names fotolia1.jpg,fotolia2.jpg,fotolia3.jpg] [--seconds 240] [--threads 1] \
        [--band Y0:Y1,X0:X1] [--save DIR] [--crops FILE.png] [--set key=value ...]

The photos are read from FOLDER (nothing of them is kept in the repository) and given to
``remove_watermark`` as they are: full size, no hint, default options, ``max_seconds``.

``--crops`` writes one small PNG: per photo, the band (widened by 16 px) of the input, of the
output and the found mark's opacity, side by side, twice the size.

Measured on the common centred area (where the task aligns them):

- the *band*: the rectangle around the mark. Found from the per-pixel median over the K inputs
  of |gradient| (``M``), smoothed over 9 x 31 px (a line of lettering): around its maximum, the
  connected part above half-way between its median and that maximum; its bounding box widened
  by 4 px (or given with ``--band``). Rows within 16 px of the top or bottom edge are passed
  over (no room for the strips; in the fotolia photos each photo's own ID number sits in the
  bottom-right corner).
- *removal*: inside the band ``M`` stands above the level of two strips (10 rows, 3 rows apart)
  just above and below the band, same columns; the excess is ``mean(M[band]) - mean(M[strips])``.
  Removal = ``1 - excess(cleaned) / excess(inputs)``; bar >= 80%.
- *harm*: outside the band widened by 8 px, |output - input| in grey levels (0..255) over all
  pixels and channels of the K images: mean (bar <= 1.5) and 99.9th percentile (bar <= 24).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bench_common import parse_sets  # noqa: E402


def median_gradient(images: list[np.ndarray]) -> np.ndarray:
    """Per-pixel median over the images of the Sobel |gradient| of their grey level (0..255)."""
    from scipy import ndimage

    mags = []
    for img in images:
        grey = np.asarray(img, np.float64)
        grey = grey.mean(-1) if grey.ndim == 3 else grey
        mags.append(np.hypot(ndimage.sobel(grey, 0), ndimage.sobel(grey, 1)) / 8.0)
    return np.median(np.stack(mags), 0)


def find_band(m: np.ndarray) -> tuple[slice, slice]:
    """The rectangle around the mark from the median |gradient| map (see the module docstring)."""
    from scipy import ndimage

    smooth = ndimage.uniform_filter(m, (9, 31))
    h, w = m.shape
    smooth[:16] = smooth[h - 16 :] = 0  # the strips above and below must fit
    y, x = np.unravel_index(int(np.argmax(smooth)), smooth.shape)
    level = float(np.median(smooth))
    labels, _ = ndimage.label(smooth > level + 0.5 * (smooth[y, x] - level))
    ys, xs = np.nonzero(labels == labels[y, x])
    return slice(max(ys.min() - 4, 0), min(ys.max() + 5, h)), slice(
        max(xs.min() - 4, 0), min(xs.max() + 5, w)
    )


def excess(m: np.ndarray, band: tuple[slice, slice]) -> tuple[float, float]:
    """``(mean in the band, mean of the strips above and below it)``."""
    ys, xs = band
    above = m[max(ys.start - 13, 0) : max(ys.start - 3, 0), xs]
    below = m[ys.stop + 3 : ys.stop + 13, xs]
    strips = np.concatenate([above.ravel(), below.ravel()])
    return float(m[band].mean()), float(strips.mean())


def save_crops(
    path: Path, ins: list[np.ndarray], outs: list[np.ndarray], mask: np.ndarray, band: tuple[slice, slice]
) -> None:
    """Per photo a row: the band widened by 16 px of the input, the output and the mask, x2."""
    from skimage import io

    h, w = mask.shape
    box = (
        slice(max(band[0].start - 16, 0), min(band[0].stop + 16, h)),
        slice(max(band[1].start - 16, 0), min(band[1].stop + 16, w)),
    )
    grey = np.repeat((255 * mask[box])[..., None], 3, -1)
    rows = []
    for i, o in zip(ins, outs, strict=True):
        parts = [i[box], o[box], grey]
        gap = np.full((parts[0].shape[0], 4, 3), 255.0)
        rows.append(np.concatenate([parts[0], gap, parts[1], gap, parts[2]], 1))
        rows.append(np.full((4, rows[-1].shape[1], 3), 255.0))
    picture = np.clip(np.round(np.concatenate(rows[:-1], 0)), 0, 255).astype(np.uint8)
    io.imsave(path, np.kron(picture, np.ones((2, 2, 1), np.uint8)), check_contrast=False)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--names", default="fotolia1.jpg,fotolia2.jpg,fotolia3.jpg")
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--band", default="", help="Y0:Y1,X0:X1 on the common area (default: found)")
    parser.add_argument("--save", type=Path, default=None, help="write the outputs and mask here")
    parser.add_argument("--crops", type=Path, default=None, help="write band crops: inputs | outputs | mask")
    parser.add_argument("--set", action="append", default=[], help="task option key=value")
    args = parser.parse_args(argv)
    options = parse_sets(args.set)

    from skimage import io

    import napari_doubledip as dd
    from napari_doubledip.core.tasks.watermark import centre_crops

    names = args.names.split(",")
    images = [io.imread(args.folder / n) for n in names]
    common, crops = centre_crops([i.shape for i in images])
    start = time.time()
    load0 = os.getloadavg()[0]
    res = dd.remove_watermark(
        images, max_seconds=args.seconds, device="cpu", threads=args.threads, seed=args.seed, **options
    )
    wall = time.time() - start
    load1 = os.getloadavg()[0]
    ins = [np.asarray(i[c], np.float64) for i, c in zip(images, crops, strict=True)]
    outs = [np.asarray(o[c], np.float64) for o, c in zip(res.images, crops, strict=True)]
    m_in, m_out = median_gradient(ins), median_gradient(outs)
    if args.band:
        (y0, y1), (x0, x1) = (tuple(int(v) for v in part.split(":")) for part in args.band.split(","))
        band = (slice(y0, y1), slice(x0, x1))
    else:
        band = find_band(m_in)
    in_band, in_strips = excess(m_in, band)
    out_band, out_strips = excess(m_out, band)
    removal = 1.0 - (out_band - out_strips) / (in_band - in_strips)
    outside = np.ones(common, bool)
    ys, xs = band
    outside[max(ys.start - 8, 0) : ys.stop + 8, max(xs.start - 8, 0) : xs.stop + 8] = False
    diff_out = np.concatenate([np.abs(o - i)[outside].ravel() for o, i in zip(outs, ins, strict=True)])
    diff_in = np.concatenate([np.abs(o - i)[~outside].ravel() for o, i in zip(outs, ins, strict=True)])
    # pixels outside the common area are the input's own by construction; checked all the same
    whole_same = True
    for o, i, c in zip(res.images, images, crops, strict=True):
        off_common = np.ones(i.shape[:2], bool)
        off_common[c] = False
        whole_same &= bool(np.array_equal(o[off_common], i[off_common]))
    mask = np.asarray(res.mask)
    p = res.params
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        for n, o in zip(names, res.images, strict=True):
            io.imsave(args.save / f"clean_{Path(n).stem}.png", o, check_contrast=False)
        io.imsave(args.save / "mask.png", (255 * mask).astype(np.uint8), check_contrast=False)
    if args.crops:
        save_crops(args.crops, ins, outs, mask, band)
    ok_removal = removal >= 0.8
    ok_harm = diff_out.mean() <= 1.5 and np.percentile(diff_out, 99.9) <= 24
    report = "\n".join(
        [
            "### Watermark removal on real photos (K share one mark), full size, no hint, defaults",
            "",
            f"`benchmarks/bench_watermark_real.py FOLDER --names {args.names} --seconds {args.seconds:g} "
            f"--threads {args.threads} --seed {args.seed}{' --band ' + args.band if args.band else ''}"
            f"{''.join(' --set ' + s for s in args.set)}`; {platform.machine()}, {os.cpu_count()} CPUs "
            f"(shared), device cpu; load average {load0:.2f} at the start, {load1:.2f} at the end.",
            "",
            f"- images: {[tuple(i.shape) for i in images]}, common area {common}; band rows "
            f"{ys.start}:{ys.stop}, columns {xs.start}:{xs.stop}",
            f"- run: {p['steps_run']} steps, {p['seconds']:.0f} s in the loop, {wall:.0f} s in all, "
            f"stop: {p['stop_reason']}",
            f"- mask: {int((mask > 0).sum())} pixels > 0 ({(mask > 0).mean():.2%} of the area), "
            f"{int((mask[~outside] > 0).sum())} of them in the band (widened by 8 px); max {mask.max():.3f}",
            f"- median |gradient| (grey levels/px) in the band vs the strips: inputs {in_band:.2f} vs "
            f"{in_strips:.2f} (excess {in_band - in_strips:.2f}); cleaned {out_band:.2f} vs {out_strips:.2f} "
            f"(excess {out_band - out_strips:.2f})",
            f"- **removal {removal:.1%}** (bar >= 80%: {'met' if ok_removal else 'NOT met'})",
            f"- **harm** outside the band widened by 8 px: mean |output - input| {diff_out.mean():.3f} grey "
            f"levels, 99.9th percentile {np.percentile(diff_out, 99.9):.1f}, max {diff_out.max():.0f}, "
            f"pixels changed {np.mean(diff_out > 0):.3%} (bars <= 1.5 and <= 24: {'met' if ok_harm else 'NOT met'})",
            f"- inside the band widened by 8 px: mean |output - input| {diff_in.mean():.2f}, 99.9th "
            f"percentile {np.percentile(diff_in, 99.9):.1f}; outside the common area identical: {whole_same}",
        ]
    )
    print(report)
    return report


if __name__ == "__main__":
    main()
