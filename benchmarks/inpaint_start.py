"""The classical start of inpainting against biharmonic filling: which test confirmed the blend, and its PSNR.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/inpaint_start.py \
        [--sizes 128,256] [--images astronaut,camera,coffee] [--tasks inpaint50,inpaint80] [--json out.json]
        [--files a.png,b.jpg]   # instead of crops: files at their own size (size 0 in the table)

The same inputs as ``scaling.py`` (centre crops, 50% / 80% of the pixels missing at random, seed
0). For each: the engine's start as a run with the defaults (seed 0, 5% of the known pixels held
out) builds it, without the generator: the fill candidates from the pixels it fits, the blend
weights of the held-out test (``guides.fit_fill_weights``) and, where that keeps biharmonic
filling, of the cross-validation over the other known pixels
(``fill_folds.cross_validated_fill_weights``, which also weighs harmonic and triharmonic
filling); the returned start is the blend of the candidates
filled from all the known pixels. PSNR over the whole image. Not timed against a budget (the
generator's run is ``scaling.py``'s); the seconds are the set-up's, on whatever load there is.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from functools import partial

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bench_common import psnr  # noqa: E402
from scaling import crop, load_file, make_input  # noqa: E402


def start(damaged: np.ndarray, mask: np.ndarray) -> dict:
    """The engine's classical start for one input: weights, test used, the filled image, seconds."""
    from napari_doubledip.core.conversion import from_unit, to_unit
    from napari_doubledip.core.fill_folds import (
        POLYHARMONIC_ORDERS,
        all_fill_candidates,
        cross_validated_fill_weights,
    )
    from napari_doubledip.core.guides import blend_fills, fill_candidates, fit_fill_weights, holdout_mask

    unit, layout = to_unit(damaged, range_from=~mask)
    t0 = time.perf_counter()
    held = holdout_mask(mask.shape, 0.05, 0, ~mask)
    unseen = held | mask
    weights = np.concatenate(
        [fit_fill_weights(fill_candidates(unit, unseen), unit, held, 0), np.zeros(len(POLYHARMONIC_ORDERS))]
    )
    first = weights.copy()
    score = None
    if weights[0] == 1.0 and not weights[1:].any():
        weights, score = cross_validated_fill_weights(unit, unseen, 0)
    seconds = time.perf_counter() - t0
    candidates = all_fill_candidates(unit, mask)
    return {
        "held_out_weights": first.round(4).tolist(),
        "weights": weights.round(4).tolist(),
        "fold_score": score,
        "test": "held-out" if score is None else "folds",
        "seconds": seconds,
        "biharmonic": from_unit(candidates[0], layout),
        "first": from_unit(blend_fills(candidates, first), layout),
        "start": from_unit(blend_fills(candidates, weights), layout),
    }


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="128,256")
    parser.add_argument("--images", default="astronaut,camera,coffee")
    parser.add_argument("--tasks", default="inpaint50,inpaint80")
    parser.add_argument("--files", default="", help="comma-separated image files, at their own size")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    rows = []
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_start = os.getloadavg()[0]
    inputs = [(0, os.path.basename(f), partial(load_file, f)) for f in args.files.split(",") if f]
    if not inputs:
        inputs = [
            (size, name, partial(crop, name, size))
            for size in (int(s) for s in args.sizes.split(","))
            for name in args.images.split(",")
        ]
    for size, name, load in inputs:
        clean = load()
        for task in args.tasks.split(","):
            (damaged, mask), _ = make_input(task, clean)
            s = start(damaged, mask)
            row = {
                "size": size,
                "image": name,
                "task": task,
                "biharmonic": psnr(s.pop("biharmonic"), clean),
                "held_out_only": psnr(s.pop("first"), clean),
                "start": psnr(s.pop("start"), clean),
                **s,
            }
            rows.append(row)
            print(row, file=sys.stderr, flush=True)
    load_end = os.getloadavg()[0]
    lines = [
        f"inpaint_start.py, {started}, load {load_start:.2f} -> {load_end:.2f}",
        "",
        "| size | image | task | biharmonic | held-out test only | start (+ folds) | gain | test | fold z | weights | set-up s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        z = "–" if r["fold_score"] is None else f"{r['fold_score']:.2f}"
        lines.append(
            f"| {r['size']} | {r['image']} | {r['task']} | {r['biharmonic']:.2f} | {r['held_out_only']:.2f} | "
            f"{r['start']:.2f} | {r['start'] - r['biharmonic']:+.2f} | {r['test']} | {z} | "
            f"{', '.join(f'{w:.2f}' for w in r['weights'])} | {r['seconds']:.1f} |"
        )
    table = "\n".join(lines)
    print(table)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, "table": table}, fh, indent=1)
        with open(os.path.splitext(args.json)[0] + ".md", "w") as fh:
            fh.write(table + "\n")
    return table


if __name__ == "__main__":
    main()
