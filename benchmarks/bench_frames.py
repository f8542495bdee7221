"""The frames of a stack one by one vs side by side on one grouped net (``api.stream_frames``).

    OMP_WAIT_POLICY=PASSIVE flock /tmp/dd-bench.lock .venv/bin/python benchmarks/bench_frames.py \
        [--size 256] [--frames 4] [--steps 150] [--repeats 2] [--threads 2] [--device cpu]

The stack: ``--frames`` crops of scikit-image's ``camera`` photo, each shifted by 6 px from the
last (a drifting time-lapse), with Gaussian noise of sigma 25/255 clipped to 8 bits. Each mode runs
the whole stack with the defaults and ``--steps`` steps per frame (a batch runs them once for all
its frames), alternating between modes ``--repeats`` times so that load from other processes hits
both alike. Reported: medians of the wall time for the stack, the time per step and frame, and the
PSNR of every frame against the clean crop (NLM, as scikit-image's example sets it, beside it).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def make_stack(size: int, frames: int, seed: int = 0):
    """Noisy drifting crops of ``camera`` and their clean versions, as floats in [0, 1]."""
    import numpy as np
    from skimage import data

    photo = data.camera() / 255.0
    rng = np.random.default_rng(seed)
    clean = [photo[40 + 6 * t : 40 + 6 * t + size, 60 + 6 * t : 60 + 6 * t + size] for t in range(frames)]
    noisy = [np.round(np.clip(c + rng.normal(0, 25 / 255, c.shape), 0, 1) * 255) / 255 for c in clean]
    return clean, noisy


def run_stack(noisy, batch, steps: int, device: str, threads: int):
    """Run the stack in one mode: the frames' images and the wall time."""
    from napari_doubledip import api

    t0 = time.perf_counter()
    stream = api.stream_frames(
        "denoise", [(f,) for f in noisy], batch_frames=batch, steps=steps, device=device, threads=threads
    )
    while True:
        try:
            next(stream)
        except StopIteration as end:
            results = end.value
            break
    return [r.image for r in results], time.perf_counter() - t0, results


def main() -> None:
    """Run the comparison and print a markdown table."""
    import numpy as np
    import torch
    from skimage.metrics import peak_signal_noise_ratio as psnr
    from skimage.restoration import denoise_nl_means, estimate_sigma

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    clean, noisy = make_stack(args.size, args.frames)
    nlm = []
    for c, n in zip(clean, noisy, strict=True):
        sigma = float(estimate_sigma(n))
        nlm.append(psnr(c, denoise_nl_means(n, h=0.8 * sigma, sigma=sigma, fast_mode=True), data_range=1))
    modes = {"one by one": 1, f"side by side ({args.frames})": args.frames}
    walls: dict[str, list[float]] = {m: [] for m in modes}
    quality: dict[str, list[float]] = {}
    steps_run: dict[str, list[int]] = {}
    load = os.getloadavg()[0]
    for _ in range(args.repeats):
        for mode, batch in modes.items():
            images, wall, results = run_stack(noisy, batch, args.steps, args.device, args.threads)
            walls[mode].append(wall)
            quality[mode] = [psnr(c, im, data_range=1) for c, im in zip(clean, images, strict=True)]
            steps_run[mode] = [r.params["steps_run"] for r in results]
    print(
        f"_bench_frames.py, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, torch "
        f"{torch.__version__}, {args.device}, {args.threads} threads, load {load:.2f} -> "
        f"{os.getloadavg()[0]:.2f}; {args.frames} frames of {args.size}^2, {args.steps} steps, "
        f"{args.repeats} repeats (alternating)_\n"
    )
    print(
        "| mode | wall for the stack, s (median) | per step and frame, ms | steps per frame | PSNR per frame | mean | NLM mean |"
    )
    print("|---|---|---|---|---|---|---|")
    for mode in modes:
        wall = statistics.median(walls[mode])
        steps = statistics.mean(steps_run[mode])
        per = 1000 * wall / max(1, steps * args.frames)
        print(
            f"| {mode} | {wall:.1f} ({', '.join(f'{w:.1f}' for w in walls[mode])}) | {per:.0f} | {steps:.0f} | "
            f"{', '.join(f'{q:.2f}' for q in quality[mode])} | {np.mean(quality[mode]):.2f} | {np.mean(nlm):.2f} |"
        )


if __name__ == "__main__":
    main()
