"""Where the strokes start goes wrong on a composite, and how far its features could take it.

    nice -n 15 .venv/bin/python benchmarks/strokes_diagnosis.py [--size 128] [--pairs <pairs>] \
        [--out benchmarks/results]

An analysis (issue 12, fourth pass) of the start the segmentation task uses with strokes (the
random walk refined by GrabCut's loop: ``refine_prior(random_walk_prior(...))``; with the
judge on, the returned mask is this start in every timed run so far). Per composite
(``samples.segmentation_composite`` with skeleton strokes, ``~``: colours matched):

- the start's IoU, GrabCut's with the same strokes (``bench_segment.grabcut_strokes``);
- its errors: false foreground / false background pixels within 3 px of the true outline
  and farther (a wrong border band, or a whole region given to the wrong side);
- **ceilings** of the refinement's colour/texture model: its two mixtures (five Gaussians a
  side) fitted to the *true* mask instead of the strokes and the start, then the mean-field
  smoothing of the refinement, and a graph cut (strokes fixed): what those features could do
  with perfect training. ``+LBP``: the same with local-binary-pattern histograms added
  (uniform codes, P 8 at radius 1 and 2, counted over 15 x 15 windows);
- the refinement fitted as usual (strokes and start) on the ``+LBP`` features.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bench_common import iou  # noqa: E402
from bench_segment import PAIRS, grabcut_strokes  # noqa: E402

VALIDATION = "cell/retina,text/cell,motorcycle/retina,retina/clock~,microaneurysms/motorcycle"


def lbp_features(unit: np.ndarray) -> np.ndarray:
    """Colour/texture features of the refinement plus LBP histograms (P 8, radius 1 and 2, 15 x 15)."""
    from scipy import ndimage
    from skimage.feature import local_binary_pattern

    from napari_doubledip.core.priors.segmentation import _lightness, _standardise, colour_texture_features

    light = _lightness(unit)[..., 0]
    extra = []
    for radius in (1, 2):
        code = local_binary_pattern(light, 8, radius, "uniform")
        extra += [ndimage.uniform_filter((code == k).astype(float), 15).reshape(-1, 1) for k in range(10)]
    return np.concatenate([colour_texture_features(unit), _standardise(np.concatenate(extra, 1))], 1)


def refine_with(unit: np.ndarray, start: np.ndarray, seeds: np.ndarray, features: np.ndarray) -> np.ndarray:
    """``refine_prior``'s loop on other features (same rounds, weights, smoothing)."""
    from napari_doubledip.core.priors.segmentation import (
        REFINE_ROUNDS,
        ColourModel,
        _logit,
        mean_field,
        refit_weights,
    )

    model = ColourModel(features, components=5, seed=0)
    start_logit, q, mask = _logit(start), start, start > 0.5
    for _ in range(REFINE_ROUNDS):
        weights = refit_weights(mask.astype(np.float64), seeds)
        if weights is None:
            break
        q = mean_field(_logit(model.probability(*weights).reshape(start.shape)) + start_logit, unit)
        q = np.where(seeds == 1, 1.0, np.where(seeds == 2, 0.0, q))
        mask = q > 0.5
    return q


def ceilings(
    unit: np.ndarray, truth: np.ndarray, hints: np.ndarray, features: np.ndarray
) -> tuple[float, float]:
    """IoU of the mixtures fitted to the true mask: mean-field smoothed, and graph-cut with strokes fixed."""
    from napari_doubledip.core.priors.graphcut import min_cut, pair_weights
    from napari_doubledip.core.priors.segmentation import ColourModel, mean_field

    t = truth.ravel().astype(np.float64)
    lr = ColourModel(features, components=5, seed=0).log_ratio(t, 1 - t).reshape(truth.shape)
    return iou(mean_field(lr, unit) > 0.5, truth), iou(min_cut(lr, pair_weights(unit), hints), truth)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--pairs", default=",".join(f"{f}/{b}" for f, b in PAIRS) + "," + VALIDATION)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)

    from scipy import ndimage

    from napari_doubledip import samples
    from napari_doubledip.core.conversion import to_unit
    from napari_doubledip.core.priors.segmentation import (
        colour_texture_features,
        random_walk_prior,
        refine_prior,
    )

    load = lambda: subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()  # noqa: E731
    start, load_start = datetime.datetime.now(datetime.timezone.utc), load()
    rows = []
    for pair in args.pairs.split(","):
        fg, bg = pair.split("/")
        match = bg.endswith("~")
        bg = bg.rstrip("~")
        image, truth, hints = samples.segmentation_composite(
            args.size, 0, foreground=fg, background=bg, strokes=True, match_colours=match
        )
        unit = to_unit(image)[0]
        walk = random_walk_prior(unit, hints)
        mask = refine_prior(unit, walk, hints) > 0.5
        outline = ndimage.binary_dilation(truth) ^ ndimage.binary_erosion(truth)
        near = ndimage.distance_transform_edt(~outline) <= 3
        fp, fn = mask & ~truth, ~mask & truth
        feats = lbp_features(unit)
        base_mf, base_cut = ceilings(unit, truth, hints, colour_texture_features(unit))
        lbp_mf, lbp_cut = ceilings(unit, truth, hints, feats)
        lbp_refined = iou(refine_with(unit, walk, hints, feats) > 0.5, truth)
        rows.append(
            f"| {fg} on {bg}{' (colours matched)' if match else ''} | **{iou(mask, truth):.3f}** | "
            f"{iou(grabcut_strokes(image, hints), truth):.3f} | {(fp & near).sum()} / {(fp & ~near).sum()} | "
            f"{(fn & near).sum()} / {(fn & ~near).sum()} | {base_mf:.3f} / {base_cut:.3f} | "
            f"{lbp_mf:.3f} / {lbp_cut:.3f} | {lbp_refined:.3f} |"
        )
        print(rows[-1], flush=True)
    end, load_end = datetime.datetime.now(datetime.timezone.utc), load()
    report = "\n".join(
        [
            f"### The strokes start: errors and ceilings of its features, {args.size}²",
            "",
            f"`benchmarks/strokes_diagnosis.py --size {args.size}` (no Double-DIP run). Run "
            f"{start:%Y-%m-%d %H:%M} → {end:%H:%M} UTC, niced; load at start: `{load_start}`; at end: "
            f"`{load_end}`. IoU with the true foreground; pixels of {args.size}² (truth: {truth.sum()} "
            "foreground).",
            "",
            "| composite | start (walk + refinement) | GrabCut | false fg px: ≤ 3 px from the outline / farther | "
            "false bg px: near / farther | ceiling, its features (mean field / cut) | ceiling, +LBP | "
            "refinement on +LBP, fitted as usual |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"strokes_diagnosis_{args.size}.md").write_text(report + "\n")
    return report


if __name__ == "__main__":
    main()
