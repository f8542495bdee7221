"""Segmentation of synthetic composites: Double-DIP vs GrabCut (strokes, box), classical splits, inpainting.

    OMP_WAIT_POLICY=PASSIVE flock /tmp/dd-bench.lock .venv/bin/python benchmarks/bench_segment.py \
        [--seconds 120] [--size 128] [--threads 2] [--pairs brick/astronaut,...] \
        [--parts strokes,box,unsupervised] [--hints strokes|spread|random] [--out benchmarks/results]

Composites from ``napari_doubledip.samples.segmentation_composite``: a textured photo seen
through skimage's horse silhouette, pasted on another photo; ``gravel/brick`` is grey texture on
grey texture, and a ``~`` after the background (``chelsea/coffee~``) matches the foreground's
colour histogram to the background's (similar colour statistics). Score: intersection over
union (IoU) with the true foreground.

- ``strokes``: Double-DIP given hint strokes (``--hints strokes``: skeleton scribbles through
  each region; ``spread``/``random``: three + three small disks) vs GrabCut given the same
  strokes (``cv2.grabCut``, ``GC_INIT_WITH_MASK``, 8 iterations: strokes fixed as
  ``GC_FGD``/``GC_BGD``, every other pixel "probable" foreground or background by the nearer
  stroke), and vs Double-DIP's prior alone (thresholded at 0.5).
- ``box``: Double-DIP given ``box=`` the true mask's bounding box grown by ``size // 32``
  pixels vs GrabCut given the same rectangle (``GC_INIT_WITH_RECT``, 8 iterations).
- ``unsupervised``: Double-DIP without hints (it decides which side is the foreground) vs
  ``chan_vese`` on the gray image and 2-means (scikit-learn) on colour + texture (the
  features of ``pixel_features``: CIELAB, its 5 x 5 local mean and spread); the baselines get
  the better of their two label assignments (an oracle in their favour).
- Object removal: Double-DIP's background layer (from the strokes run) inside the true
  foreground, against the true background photo (PSNR over those pixels), vs
  ``skimage.restoration.inpaint_biharmonic`` and ``cv2.inpaint`` (Telea, radius 3) given the
  true mask.

Writes ``segment_grabcut_<size>_<parts>.md`` and ``.png`` (per composite: image, truth, then
per part: ours and GrabCut's mask with strokes, with the box, ours unsupervised; last, our
background layer from the strokes run).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bench_common import iou, parse_sets  # noqa: E402

PAIRS = (
    ("brick", "astronaut"),
    ("grass", "coffee"),
    ("chelsea", "brick"),
    ("coffee", "grass"),
    ("astronaut", "camera"),
    ("camera", "chelsea"),
    ("gravel", "brick"),
    ("chelsea", "coffee~"),
)


def best_iou(labels: np.ndarray, truth: np.ndarray) -> float:
    """IoU of the better of the two ways to call one side foreground."""
    return max(iou(labels, truth), iou(~np.asarray(labels, bool), truth))


def _u8(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8)[..., ::-1])


def grabcut_strokes(image: np.ndarray, hints: np.ndarray, iterations: int = 8) -> np.ndarray:
    """GrabCut from strokes: painted pixels fixed, the others probable by the nearer stroke."""
    import cv2
    from scipy import ndimage

    d_fg = ndimage.distance_transform_edt(hints != 1)
    d_bg = ndimage.distance_transform_edt(hints != 2)
    mask = np.where(d_fg < d_bg, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    mask[hints == 1], mask[hints == 2] = cv2.GC_FGD, cv2.GC_BGD
    cv2.setRNGSeed(0)
    cv2.grabCut(
        _u8(image), mask, None, np.zeros((1, 65)), np.zeros((1, 65)), iterations, cv2.GC_INIT_WITH_MASK
    )
    return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)


def grabcut_box(image: np.ndarray, box: tuple[int, int, int, int], iterations: int = 8) -> np.ndarray:
    """GrabCut from a rectangle ``(y0, x0, y1, x1)``."""
    import cv2

    y0, x0, y1, x1 = box
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.setRNGSeed(0)
    rect = (x0, y0, x1 - x0, y1 - y0)
    cv2.grabCut(
        _u8(image), mask, rect, np.zeros((1, 65)), np.zeros((1, 65)), iterations, cv2.GC_INIT_WITH_RECT
    )
    return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)


def box_around(truth: np.ndarray, margin: int) -> tuple[int, int, int, int]:
    """The true mask's bounding box grown by ``margin`` pixels (clipped to the image)."""
    ys, xs = np.nonzero(truth)
    h, w = truth.shape
    return (
        max(0, int(ys.min()) - margin),
        max(0, int(xs.min()) - margin),
        min(h, int(ys.max()) + 1 + margin),
        min(w, int(xs.max()) + 1 + margin),
    )


def chan_vese_labels(image: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2gray
    from skimage.segmentation import chan_vese

    return np.asarray(chan_vese(rgb2gray(image)), bool)


def kmeans_labels(image: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-means on colour + texture (CIELAB, its 5 x 5 local mean and spread)."""
    from sklearn.cluster import KMeans

    from napari_doubledip.core.priors.segmentation import pixel_features

    feats = pixel_features(np.moveaxis(image, -1, 0))
    return KMeans(2, n_init=4, random_state=seed).fit_predict(feats).reshape(image.shape[:2]) == 1


def psnr_inside(a: np.ndarray, b: np.ndarray, region: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(a, np.float64)[region] - np.asarray(b, np.float64)[region]) ** 2))
    return float(10 * np.log10(1.0 / max(mse, 1e-12)))


def removal_peers(image: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Biharmonic and Telea inpainting of the true foreground (the object removed)."""
    import cv2
    from skimage.restoration import inpaint_biharmonic

    bih = inpaint_biharmonic(image, truth, channel_axis=-1)
    telea = cv2.inpaint(_u8(image), truth.astype(np.uint8), 3, cv2.INPAINT_TELEA)[..., ::-1] / 255.0
    return bih, telea


def choice_note(params: dict) -> str:
    """Where the returned mask came from (the run's ``mask_choice``), for the run column."""
    c = params.get("mask_choice")
    if not c:
        return ""
    if c["regions"] == 0:
        return ", mask: run = start"
    return (
        f", mask: {c['source']} ({c['regions_from_run']}/{c['regions']} regions, "
        f"{c['pixels_from_run']}/{c['pixels_changed']} px from the run)"
    )


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _tile(mask: np.ndarray) -> np.ndarray:
    return np.repeat(np.asarray(mask, np.float32)[..., None], 3, axis=2)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    default_pairs = ",".join(f"{f}/{b}" for f, b in PAIRS)
    parser.add_argument("--pairs", default=default_pairs)
    parser.add_argument("--parts", default="strokes,box,unsupervised")
    parser.add_argument("--hints", choices=("strokes", "spread", "random"), default="strokes")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--set", action="append", default=[], help="task option key=value")
    parser.add_argument(
        "--suffix", default="", help="appended to the output files' names (runs split by --pairs)"
    )
    args, _ = parser.parse_known_args(argv)

    import imageio.v3 as iio

    import napari_doubledip as dd
    from napari_doubledip import samples
    from napari_doubledip.core.conversion import to_unit
    from napari_doubledip.core.priors.segmentation import box_prior, random_walk_prior, refine_prior

    parts = set(args.parts.split(","))
    run = {"max_seconds": args.seconds, "device": "cpu", "threads": args.threads, "seed": args.seed}
    run.update(parse_sets(args.set))
    start, load_start = datetime.datetime.now(datetime.timezone.utc), load()
    rows: dict[str, list[str]] = {"strokes": [], "box": [], "unsupervised": [], "removal": []}
    scores: dict[str, list[float]] = {}
    tiles = []

    def note(key: str, value: float) -> None:
        scores.setdefault(key, []).append(value)

    for pair in args.pairs.split(","):
        fg, bg = pair.split("/")
        match = bg.endswith("~")
        bg = bg.rstrip("~")
        name = f"{fg} on {bg}" + (" (colours matched)" if match else "")
        composite = {"foreground": fg, "background": bg, "match_colours": match}
        image, truth, hints = samples.segmentation_composite(
            args.size,
            args.seed,
            strokes=args.hints == "strokes",
            spread_hints=args.hints == "spread",
            **composite,
        )
        # the start as the task computes it: on the image scaled to its own min..max (to_unit),
        # not on the raw composite (the box prior on gravel on brick at 256² differs: 0.722 raw)
        unit = to_unit(image)[0]
        row = [image, _tile(truth)]
        if "strokes" in parts:
            t0 = time.perf_counter()
            gc = grabcut_strokes(image, hints)
            t_gc = time.perf_counter() - t0
            prior = iou(refine_prior(unit, random_walk_prior(unit, hints), hints) > 0.5, truth)
            r = dd.segment(image, hints, **run)
            d, g, p = iou(r.foreground_mask, truth), iou(gc, truth), r.params
            note("dd_s", d), note("gc_s", g), note("prior_s", prior)
            rows["strokes"].append(
                f"| {name} | {d:.3f} | {g:.3f} ({t_gc:.2f} s) | {prior:.3f} | {p['steps_run']} steps, "
                f"{p['seconds']:.0f} s, stop: {p['stop_reason']}{choice_note(p)} |"
            )
            print(rows["strokes"][-1], flush=True)
            row += [_tile(r.foreground_mask), _tile(gc)]
            true_bg = samples.photo(bg, args.size)
            region = truth
            bih, telea = removal_peers(image, truth)
            ours = np.asarray(r.background, np.float32)
            vals = [psnr_inside(x, true_bg, region) for x in (ours, bih, telea)]
            for key, v in zip(("rm_dd", "rm_bih", "rm_telea"), vals):
                note(key, v)
            rows["removal"].append(f"| {name} | {vals[0]:.2f} | {vals[1]:.2f} | {vals[2]:.2f} |")
            print(rows["removal"][-1], flush=True)
            tail = [ours]
        if "box" in parts:
            box = box_around(truth, max(1, args.size // 32))
            t0 = time.perf_counter()
            gc = grabcut_box(image, box)
            t_gc = time.perf_counter() - t0
            prior = iou(box_prior(unit, box, args.seed) > 0.5, truth)
            r = dd.segment(image, box=box, **run)
            d, g, p = iou(r.foreground_mask, truth), iou(gc, truth), r.params
            note("dd_b", d), note("gc_b", g), note("prior_b", prior)
            rows["box"].append(
                f"| {name} | {box} | {d:.3f} | {g:.3f} ({t_gc:.2f} s) | {prior:.3f} | {p['steps_run']} steps, "
                f"{p['seconds']:.0f} s, stop: {p['stop_reason']}{choice_note(p)} |"
            )
            print(rows["box"][-1], flush=True)
            row += [_tile(r.foreground_mask), _tile(gc)]
        if "unsupervised" in parts:
            cv = best_iou(chan_vese_labels(image), truth)
            km = best_iou(kmeans_labels(image, args.seed), truth)
            r = dd.segment(image, None, **run)
            d, p = iou(r.foreground_mask, truth), r.params
            note("dd_u", d), note("cv", cv), note("km", km)
            rows["unsupervised"].append(
                f"| {name} | {d:.3f} (either side: {best_iou(r.foreground_mask, truth):.3f}) | {cv:.3f} | "
                f"{km:.3f} | {p['steps_run']} steps, {p['seconds']:.0f} s, stop: {p['stop_reason']}{choice_note(p)} |"
            )
            print(rows["unsupervised"][-1], flush=True)
            row += [_tile(r.foreground_mask)]
        if "strokes" in parts:
            row += tail
        tiles.append(np.concatenate([np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=1) for t in row], 1))

    def mean(key: str) -> str:
        return f"**{np.mean(scores[key]):.3f}**" if key in scores else "–"

    def mean_db(key: str) -> str:
        return f"**{np.mean(scores[key]):.2f}**" if key in scores else "–"

    end, load_end = datetime.datetime.now(datetime.timezone.utc), load()
    command = (
        f"`benchmarks/bench_segment.py --seconds {args.seconds:g} --size {args.size} --threads {args.threads} "
        f"--hints {args.hints} --parts {args.parts}{''.join(' --set ' + s for s in args.set)}"
        f"{'' if args.pairs == default_pairs else ' --pairs ' + args.pairs}"
        f"{' --suffix ' + args.suffix if args.suffix else ''}`"
    )
    lines = [
        f"### Segmentation vs GrabCut, {args.size}²",
        "",
        f"{command}; {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared), device "
        f"cpu, default settings, {args.seconds:g} s budget a run. IoU with the true foreground.",
        f"Run {start:%Y-%m-%d %H:%M} → {end:%H:%M} UTC; load at start: `{load_start}`; at end: `{load_end}`.",
    ]
    if rows["strokes"]:
        lines += [
            "",
            f"(a) strokes ({args.hints})",
            "",
            "| composite | Double-DIP | GrabCut (same strokes) | its prior alone | run |",
            "|---|---|---|---|---|",
            *rows["strokes"],
            f"| **mean** | {mean('dd_s')} | {mean('gc_s')} | {mean('prior_s')} | |",
        ]
    if rows["box"]:
        lines += [
            "",
            "(b) a box (the true bounding box grown by size/32 pixels)",
            "",
            "| composite | box (y0, x0, y1, x1) | Double-DIP | GrabCut (same box) | its prior alone | run |",
            "|---|---|---|---|---|---|",
            *rows["box"],
            f"| **mean** | | {mean('dd_b')} | {mean('gc_b')} | {mean('prior_b')} | |",
        ]
    if rows["unsupervised"]:
        lines += [
            "",
            "(c) without hints (baselines: better of their two label assignments)",
            "",
            "| composite | Double-DIP (its own choice of foreground) | chan_vese | 2-means (colour + texture) | run |",
            "|---|---|---|---|---|",
            *rows["unsupervised"],
            f"| **mean** | {mean('dd_u')} | {mean('cv')} | {mean('km')} | |",
        ]
    if rows["removal"]:
        lines += [
            "",
            "(d) object removal: PSNR (dB) inside the true foreground against the true background",
            "",
            "| composite | Double-DIP background layer (strokes run) | inpaint_biharmonic (true mask) | "
            "cv2.inpaint Telea (true mask) |",
            "|---|---|---|---|",
            *rows["removal"],
            f"| **mean** | {mean_db('rm_dd')} | {mean_db('rm_bih')} | {mean_db('rm_telea')} |",
        ]
    report = "\n".join(lines)
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"segment_grabcut_{args.size}_{args.parts.replace(',', '_')}"
    if "strokes" in parts and args.hints != "strokes":
        stem += f"_{args.hints}"
    stem += args.suffix
    (args.out / f"{stem}.md").write_text(report + "\n")
    grid = np.concatenate(tiles, 0)
    iio.imwrite(args.out / f"{stem}.png", (np.clip(grid, 0, 1) * 255).round().astype(np.uint8))
    return report


if __name__ == "__main__":
    main()
