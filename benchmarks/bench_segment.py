"""Segmentation of synthetic composites: Double-DIP with and without hints vs classical peers.

    OMP_WAIT_POLICY=PASSIVE flock /tmp/dd-bench.lock .venv/bin/python benchmarks/bench_segment.py \
        [--seconds 120] [--size 128] [--threads 2] [--pairs brick/astronaut,...] [--skip-unsupervised] \
        [--hints spread|random]

Composites from ``napari_doubledip.samples.segmentation_composite``: a textured photo seen
through skimage's horse silhouette, pasted on another photo. (a) With hints: three small disks
well inside the foreground and three far out in the background (generated, as a user would
paint them: ``--hints spread``, the default, puts them near the centres of a k-means split of
the allowed positions, so they mark different parts of each region; ``--hints random`` draws them
at random, which for the horse puts all three foreground disks in its neck); Double-DIP vs
``skimage.segmentation.random_walker`` given the same hints (on the colour image, default beta),
and vs Double-DIP's own starting point alone (``random_walk_prior``: a random walk over colour
and texture features, thresholded at 0.5), which shows what the generators add. (b) Without hints: Double-DIP (which decides which side is the
foreground by itself: the side touching the border less) vs ``chan_vese`` (on the gray image)
and 2-cluster k-means on colour; the baselines get the better of their two label assignments
(an oracle in their favour). Score: intersection over union with the true foreground.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

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
)


def best_iou(labels: np.ndarray, truth: np.ndarray) -> float:
    """IoU of the better of the two ways to call one side foreground."""
    return max(iou(labels, truth), iou(~np.asarray(labels, bool), truth))


def random_walker_labels(image: np.ndarray, hints: np.ndarray) -> np.ndarray:
    from skimage.segmentation import random_walker

    return random_walker(image, hints.astype(np.int32), channel_axis=-1) == 1


def chan_vese_labels(image: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2gray
    from skimage.segmentation import chan_vese

    return np.asarray(chan_vese(rgb2gray(image)), bool)


def kmeans_labels(image: np.ndarray, seed: int = 0) -> np.ndarray:
    from sklearn.cluster import KMeans

    x = image.reshape(-1, image.shape[-1])
    return KMeans(2, n_init=4, random_state=seed).fit_predict(x).reshape(image.shape[:2]) == 1


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pairs", default=",".join(f"{f}/{b}" for f, b in PAIRS))
    parser.add_argument("--skip-unsupervised", action="store_true")
    parser.add_argument("--hints", choices=("spread", "random"), default="spread")
    parser.add_argument("--skip-hinted", action="store_true")
    parser.add_argument("--set", action="append", default=[], help="task option key=value")
    args, _ = parser.parse_known_args(argv)

    import napari_doubledip as dd
    from napari_doubledip import samples

    extra = parse_sets(args.set)
    run = {"max_seconds": args.seconds, "device": "cpu", "threads": args.threads, "seed": args.seed, **extra}
    hinted_rows, unsup_rows = [], []
    from napari_doubledip.core.conversion import to_unit
    from napari_doubledip.core.priors.segmentation import random_walk_prior

    scores: dict[str, list[float]] = {k: [] for k in ("dd_h", "rw", "prior", "dd_u", "cv", "km")}
    for pair in args.pairs.split(","):
        fg, bg = pair.split("/")
        image, truth, hints = samples.segmentation_composite(
            args.size, args.seed, fg, bg, spread_hints=args.hints == "spread"
        )
        if not args.skip_hinted:
            t0 = time.perf_counter()
            rw = iou(random_walker_labels(image, hints), truth)
            t_rw = time.perf_counter() - t0
            prior = iou(random_walk_prior(to_unit(image)[0], hints) > 0.5, truth)
            scores["prior"].append(prior)
            r = dd.segment(image, hints, **run)
            d = iou(r.labels, truth)
            scores["dd_h"].append(d)
            scores["rw"].append(rw)
            p = r.params
            hinted_rows.append(
                f"| {fg} on {bg} | {d:.3f} | {rw:.3f} ({t_rw:.1f} s) | {prior:.3f} | {p['steps_run']} steps, "
                f"{p['seconds']:.0f} s, stop: {p['stop_reason']} |"
            )
            print(hinted_rows[-1], flush=True)
        if not args.skip_unsupervised:
            cv = best_iou(chan_vese_labels(image), truth)
            km = best_iou(kmeans_labels(image, args.seed), truth)
            r = dd.segment(image, None, **run)
            d = iou(r.labels, truth)
            scores["dd_u"].append(d)
            scores["cv"].append(cv)
            scores["km"].append(km)
            p = r.params
            unsup_rows.append(
                f"| {fg} on {bg} | {d:.3f} (either side: {best_iou(r.labels, truth):.3f}) | {cv:.3f} | "
                f"{km:.3f} | {p['steps_run']} steps, {p['seconds']:.0f} s |"
            )
            print(unsup_rows[-1], flush=True)

    def mean(key: str) -> str:
        return f"**{np.mean(scores[key]):.3f}**" if scores[key] else "–"

    lines = [
        "### Segmentation of composites",
        "",
        f"`benchmarks/bench_segment.py --seconds {args.seconds:g} --size {args.size} --threads "
        f"{args.threads} --hints {args.hints}{''.join(' --set ' + s for s in args.set)}`; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared), device cpu, "
        "default settings. IoU with the true foreground.",
    ]
    if hinted_rows:
        lines += [
            "",
            f"(a) with 3 foreground + 3 background hint disks ({args.hints})",
            "",
            "| composite | Double-DIP | random_walker (same hints) | its prior alone | notes |",
            "|---|---|---|---|---|",
            *hinted_rows,
            f"| **mean** | {mean('dd_h')} | {mean('rw')} | {mean('prior')} | |",
        ]
    if unsup_rows:
        lines += [
            "",
            "(b) without hints (baselines: better of their two label assignments)",
            "",
            "| composite | Double-DIP (its own choice of foreground) | chan_vese | k-means (2, colour) | notes |",
            "|---|---|---|---|---|",
            *unsup_rows,
            f"| **mean** | {mean('dd_u')} | {mean('cv')} | {mean('km')} | |",
        ]
    report = "\n".join(lines)
    print(report)
    return report


if __name__ == "__main__":
    main()
