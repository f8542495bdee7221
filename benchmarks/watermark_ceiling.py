r"""What a perfect removal scores on the real-photo measure: a known mark stamped on public photos.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/watermark_ceiling.py MASK.png \
        [--photos astronaut,coffee,chelsea] [--gain 1.0] [--jpeg 85] [--run] [--set steps=26 ...]

``MASK.png`` is a mark's opacity (0..255), e.g. the ``mask.png`` that ``bench_watermark_real.py
--save DIR`` writes for fotolia1-3 (the mark as the task found it, on their common area). The
mark, white at that opacity (times ``--gain``), is laid over crops of scikit-image's photos
resized to the mask's size. The measure of ``bench_watermark_real.py`` (the band from the
inputs' median |gradient|, the excess over the strips above and below it, removal = the share
of that excess a cleaned set removes) is then taken for: the clean photos themselves (a perfect
removal: its removal is what the photos' own edges in the band leave of the bar), the clean
photos blurred inside the band (what smoothing scores), and, with ``--run``,
``remove_watermark`` at the defaults (``--set`` options, e.g. ``steps=26``).

``--jpeg Q`` compresses the marked photos as JPEGs of quality ``Q`` with 4:2:0 chroma (Pillow; the
fotolia photos are quality 85, 4:2:0), and the clean photos alike for the perfect removal (the
photo as it would have come without the mark). PSNRs are given over the whole frame and inside
the mark (opacity > 0.02), against the clean photos before compression.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bench_common import parse_sets, psnr  # noqa: E402
from bench_watermark_real import excess, find_band, median_gradient  # noqa: E402


def removal(images: list[np.ndarray], inputs_m: np.ndarray, band: tuple[slice, slice]) -> float:
    """Share of the inputs' band excess (``inputs_m``: their median |gradient|) that ``images`` remove."""
    ib, istr = excess(inputs_m, band)
    ob, ostr = excess(median_gradient(images), band)
    return 1.0 - (ob - ostr) / (ib - istr)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """``image`` (0..255) through a JPEG of ``quality`` with 4:2:0 chroma (Pillow), as float64."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.clip(np.round(image), 0, 255).astype(np.uint8)).save(
        buffer, "JPEG", quality=quality, subsampling=2
    )
    buffer.seek(0)
    return np.asarray(Image.open(buffer)).astype(np.float64)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mask")
    parser.add_argument("--photos", default="astronaut,coffee,chelsea")
    parser.add_argument("--gain", type=float, default=1.0)
    parser.add_argument("--jpeg", type=int, default=0, help="JPEG quality (4:2:0) of the photos; 0: none")
    parser.add_argument("--run", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], help="task option key=value")
    args = parser.parse_args(argv)

    from scipy import ndimage
    from skimage import data, io, transform

    alpha = np.clip(io.imread(args.mask).astype(np.float64) / 255.0 * args.gain, 0.0, 1.0)
    h, w = alpha.shape
    clean = []
    for name in args.photos.split(","):
        src = np.asarray(getattr(data, name)()).astype(np.float64)
        src = np.repeat(src[..., None], 3, axis=-1) if src.ndim == 2 else src[..., :3]  # grey photos as RGB
        sh, sw = src.shape[:2]
        scale = max(h / sh, w / sw)
        img = transform.resize(src, (int(np.ceil(sh * scale)), int(np.ceil(sw * scale))), anti_aliasing=True)
        top, left = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
        clean.append(img[top : top + h, left : left + w])  # 0..255
    marked = [alpha[..., None] * 255.0 + (1 - alpha[..., None]) * c for c in clean]
    marked = [np.round(np.clip(m, 0, 255)) for m in marked]
    truth = clean
    if args.jpeg:
        marked = [jpeg(m, args.jpeg) for m in marked]
        clean = [jpeg(c, args.jpeg) for c in clean]  # the perfect removal: the photo as it came
    inside = alpha > 0.02

    def psnrs(images: list[np.ndarray]) -> str:
        whole = np.mean([psnr(i / 255, t / 255) for i, t in zip(images, truth, strict=True)])
        mark = np.mean([psnr(i[inside] / 255, t[inside] / 255) for i, t in zip(images, truth, strict=True)])
        return f"PSNR vs the clean photos {whole:.2f} dB, inside the mark {mark:.2f} dB"

    m_in = median_gradient(marked)
    band = find_band(m_in)
    ib, istr = excess(m_in, band)
    rows = [
        f"- mask {args.mask}: {int((alpha > 0).sum())} px > 0, max {alpha.max():.3f}; photos {args.photos} "
        f"at {h}x{w}; band rows {band[0].start}:{band[0].stop}, columns {band[1].start}:{band[1].stop}",
        f"- inputs{f' (JPEG quality {args.jpeg}, 4:2:0)' if args.jpeg else ''}: median |gradient| in the "
        f"band {ib:.2f} vs the strips {istr:.2f} (excess {ib - istr:.2f}); {psnrs(marked)}",
    ]
    cb, cstr = excess(median_gradient(clean), band)
    rows.append(
        f"- **perfect removal** (the clean photos): band {cb:.2f} vs strips {cstr:.2f}, removal "
        f"**{removal(clean, m_in, band):.1%}**{'; ' + psnrs(clean) if args.jpeg else ''}"
    )
    for sigma in (1.0, 2.0):
        blurred = []
        for c in clean:
            b = c.copy()
            b[band] = ndimage.gaussian_filter(c, (sigma, sigma, 0))[band]
            blurred.append(b)
        rows.append(
            f"- the clean photos blurred (Gaussian, sigma {sigma:g} px) inside the band: removal "
            f"{removal(blurred, m_in, band):.1%}"
        )
    if args.run:
        import napari_doubledip as dd

        start, load0 = time.strftime("%H:%M:%S", time.gmtime()), os.getloadavg()[0]
        images = [m.astype(np.uint8) for m in marked]
        res = dd.remove_watermark(
            images, max_seconds=5000, device="cpu", threads=args.threads, **parse_sets(args.set)
        )
        outs = [np.asarray(o, np.float64) for o in res.images]
        outside = np.ones((h, w), bool)
        outside[
            max(band[0].start - 8, 0) : band[0].stop + 8, max(band[1].start - 8, 0) : band[1].stop + 8
        ] = False
        harm = np.concatenate([np.abs(o - i)[outside].ravel() for o, i in zip(outs, images, strict=True)])
        rows.append(
            f"- remove_watermark ({', '.join(args.set) or 'defaults'}; {res.params['steps_run']} steps, "
            f"{start} UTC, load {load0:.2f}): removal **{removal(outs, m_in, band):.1%}**, harm mean "
            f"{harm.mean():.3f} / 99.9th pct {np.percentile(harm, 99.9):.1f} levels; {psnrs(outs)}"
        )
    report = "\n".join(
        [
            "### A perfect removal on the real-photo measure (a known mark on public photos)",
            "",
            f"`benchmarks/watermark_ceiling.py {args.mask} --photos {args.photos} --gain {args.gain:g}"
            f"{f' --jpeg {args.jpeg}' if args.jpeg else ''}"
            f"{' --run' if args.run else ''}{''.join(' --set ' + s for s in args.set)}`",
            "",
            *rows,
        ]
    )
    print(report)
    return report


if __name__ == "__main__":
    main()
