"""Without hints: our start against an energy choice among it and the classical splits (an experiment).

    nice -n 15 .venv/bin/python benchmarks/unsupervised_choice.py [--size 128] \
        [--tuned <pairs>] [--validation <pairs>] [--out benchmarks/results]

An experiment (issue 12, fourth pass), not the product's behaviour. Per composite
(``samples.segmentation_composite``, ``~``: colours matched) it computes

- *object*: the product's start without hints (``segmentation.unsupervised_prior``);
- two *classical candidates*: 2-means on colour/texture (``two_means`` on ``pixel_features``)
  and ``chan_vese`` on the grey image, each given the side covering less of the image's
  one-pixel frame as the foreground and cleaned by graph cuts with the border ring as
  background (``graphcut.cut_from``);
- a ground-truth-free *energy* of each (:func:`split_energy`: minus the held-out
  log-likelihood per pixel of two Gaussian mixtures, one a side, fitted on one colour of a
  checkerboard of pixels and scored on the other, both ways, plus GrabCut's contrast-sensitive
  Potts term at ``gamma`` = :data:`POTTS` x 50, per pixel);
- the *choice*: the candidate of least energy replaces the object start when it is lower by
  more than :data:`MARGIN` per pixel;

and scores each by IoU against the truth, next to the peers of ``bench_segment.py`` (2-means
with scikit-learn and ``chan_vese``, each given the better of its two sides). ``POTTS`` and
``MARGIN`` were set on the ``--tuned`` composites; the ``--validation`` ones (made of
``samples.VALIDATION_PHOTOS``) were scored once, after.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bench_common import iou  # noqa: E402
from bench_segment import best_iou, chan_vese_labels, kmeans_labels  # noqa: E402

#: Potts weight of the energy, as a fraction of GrabCut's gamma (50).
POTTS = 0.25
#: A classical candidate replaces the object start only when its energy is lower by more than this per pixel.
MARGIN = 0.05

TUNED = (
    "brick/astronaut,grass/coffee,chelsea/brick,coffee/grass,astronaut/camera,camera/chelsea,gravel/brick,"
    "chelsea/coffee~,clock/moon,hubble_deep_field/cat,immunohistochemistry/cat~,moon/cat,coins/clock,"
    "cat/coins,clock/immunohistochemistry,rocket/coins~,coins/rocket,cat/hubble_deep_field,"
    "immunohistochemistry/moon,moon/hubble_deep_field"
)
VALIDATION = (
    "retina/motorcycle,motorcycle/retina,cell/retina,text/cell,microaneurysms/motorcycle,"
    "motorcycle/hubble_deep_field,retina/clock~,cell/motorcycle~"
)


def ring_labels(shape: tuple[int, int]) -> np.ndarray:
    """``fixed`` labels of a cut: 2 on the border ring (``min / 32`` wide), 0 inside."""
    from napari_doubledip.core.priors.segmentation import BORDER_FRACTION

    h, w = shape
    ring = max(1, min(h, w) // BORDER_FRACTION)
    fixed = np.full((h, w), 2, np.uint8)
    fixed[ring : h - ring, ring : w - ring] = 0
    return fixed


def classical_candidates(unit: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """2-means and chan_vese, the side with less of the frame as foreground, cleaned by graph cuts."""
    from skimage.color import rgb2gray
    from skimage.segmentation import chan_vese

    from napari_doubledip.core.priors.graphcut import cut_from
    from napari_doubledip.core.priors.segmentation import _frame, pixel_features, two_means

    shape = unit.shape[1:]
    grey = rgb2gray(np.moveaxis(unit, 0, -1)) if unit.shape[0] == 3 else unit[0]
    splits = {
        "2-means": two_means(pixel_features(unit), seed).reshape(shape) == 1,
        "chan_vese": np.asarray(chan_vese(grey.astype(np.float64)), bool),
    }
    frame, fixed = _frame(shape), ring_labels(shape)
    return {k: cut_from(unit, ~s if s[frame].mean() > 0.5 else s, fixed, seed) for k, s in splits.items()}


def split_energy(
    unit: np.ndarray, mask: np.ndarray, features: np.ndarray, pairs: list, seed: int = 0
) -> float:
    """Held-out mixture likelihood (checkerboard halves, both ways) plus the Potts term, per pixel."""
    from napari_doubledip.core.priors.segmentation import ColourModel

    m = np.asarray(mask, bool).ravel()
    if m.sum() < 20 or (~m).sum() < 20:
        return float("inf")
    h, w = unit.shape[1:]
    yy, xx = np.mgrid[:h, :w]
    half = ((yy + xx) % 2 == 0).ravel()
    loglik = 0.0
    for train in (half, ~half):
        model = ColourModel(features, components=5, seed=seed)
        fg = model._loglik(model._fit((m & train).astype(np.float64)))
        bg = model._loglik(model._fit((~m & train).astype(np.float64)))
        share = float(np.clip((m & train).sum() / train.sum(), 1e-6, 1 - 1e-6))
        loglik += float(np.where(m, fg + np.log(share), bg + np.log(1 - share))[~train].sum())
    potts = sum(float(wt[m[a] != m[b]].sum()) for a, b, wt in pairs)
    return (potts - loglik) / m.size


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--tuned", default=TUNED)
    parser.add_argument("--validation", default=VALIDATION)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)

    from napari_doubledip import samples
    from napari_doubledip.core.conversion import to_unit
    from napari_doubledip.core.priors.graphcut import GAMMA, pair_weights
    from napari_doubledip.core.priors.segmentation import colour_texture_features, unsupervised_prior

    load = lambda: subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()  # noqa: E731
    start, load_start = datetime.datetime.now(datetime.timezone.utc), load()
    lines = []
    groups = (("the rule was set on", args.tuned), ("for validation, scored once after", args.validation))
    for group, pairs in groups:
        rows, scores = [], []
        for pair in pairs.split(","):
            fg, bg = pair.split("/")
            match = bg.endswith("~")
            image, truth, _ = samples.segmentation_composite(
                args.size, 0, foreground=fg, background=bg.rstrip("~"), match_colours=match
            )
            unit = to_unit(image)[0]
            t0 = time.perf_counter()
            masks = {"object": unsupervised_prior(unit) > 0.5, **classical_candidates(unit)}
            feats, pw = colour_texture_features(unit), pair_weights(unit, POTTS * GAMMA)
            energy = {k: split_energy(unit, m, feats, pw) for k, m in masks.items()}
            best = min(("2-means", "chan_vese"), key=energy.get)
            chosen = best if energy[best] < energy["object"] - MARGIN else "object"
            seconds = time.perf_counter() - t0
            score = {k: iou(m, truth) for k, m in masks.items()}
            km, cv = best_iou(kmeans_labels(image), truth), best_iou(chan_vese_labels(image), truth)
            peer = max(km, cv)
            scores.append((score["object"], score[chosen], peer))
            rows.append(
                f"| {fg} on {bg.rstrip('~')}{' (colours matched)' if match else ''} | {score['object']:.3f} | "
                f"{score['2-means']:.3f} | {score['chan_vese']:.3f} | "
                + " / ".join(f"{energy[k]:.3f}" for k in masks)
                + f" | {chosen}: **{score[chosen]:.3f}** | {km:.3f} / {cv:.3f} | "
                f"{'yes' if score['object'] >= peer else 'no'} → {'yes' if score[chosen] >= peer else 'no'} | "
                f"{seconds:.1f} s |"
            )
            print(rows[-1], flush=True)
        s = np.array(scores)
        lines += [
            "",
            f"Composites {group} ({len(s)}):",
            "",
            "| composite | object start | 2-means cut | chan_vese cut | energy (object / 2-means / chan_vese) | "
            "choice | peers (2-means / chan_vese, better side) | ≥ better peer (object → choice) | time |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
            f"| **mean** | **{s[:, 0].mean():.3f}** | | | | **{s[:, 1].mean():.3f}** | better peer {s[:, 2].mean():.3f} | "
            f"below: {(s[:, 0] < s[:, 2]).sum()} → {(s[:, 1] < s[:, 2]).sum()} | |",
        ]
    end, load_end = datetime.datetime.now(datetime.timezone.utc), load()
    head = [
        f"### Without hints: object start vs an energy choice among classical splits, {args.size}²",
        "",
        f"`benchmarks/unsupervised_choice.py --size {args.size}` (prior alone, no Double-DIP run; "
        f"POTTS {POTTS}, MARGIN {MARGIN}). Run {start:%Y-%m-%d %H:%M} → {end:%H:%M} UTC, niced; load at "
        f"start: `{load_start}`; at end: `{load_end}`. IoU with the true foreground.",
    ]
    report = "\n".join(head + lines)
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"unsupervised_choice_{args.size}.md").write_text(report + "\n")
    return report


if __name__ == "__main__":
    main()
