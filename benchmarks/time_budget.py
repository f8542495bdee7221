"""Does a run keep its time budget at a real size? Inpainting of a photo with half its pixels missing.

    OMP_WAIT_POLICY=PASSIVE flock /tmp/dd-bench.lock .venv/bin/python benchmarks/time_budget.py \
        PHOTO [--seconds 30] [--missing 0.5]

Prints the wall time to the result (import and reading excluded), the steps run, what the set-up
left out (``setup_cut``), the fill weights, and the PSNR against the photo beside biharmonic
filling's (the peer), with the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main() -> None:
    """Run it and print one line."""
    import numpy as np
    from skimage import io
    from skimage.metrics import peak_signal_noise_ratio as psnr
    from skimage.restoration import inpaint_biharmonic

    import napari_doubledip as dd

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photo")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--missing", type=float, default=0.5)
    args = parser.parse_args()
    image = io.imread(args.photo)[..., :3]
    mask = np.random.default_rng(0).random(image.shape[:2]) < args.missing
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    result = dd.inpaint(image, mask, max_seconds=args.seconds, seed=0)
    wall = time.perf_counter() - t0
    peer = (np.clip(inpaint_biharmonic(image, mask, channel_axis=-1), 0, 1) * 255).round().astype(np.uint8)
    p = result.params
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} {os.path.basename(args.photo)} "
        f"{image.shape[1]}x{image.shape[0]}, {args.missing:.0%} missing, budget {args.seconds:g} s: "
        f"wall {wall:.1f} s, {p['steps_run']} steps ({p['stop_reason']}), setup_cut={p.get('setup_cut')}, "
        f"fill weights {p.get('fill_weights')}; PSNR {psnr(image, result.image):.2f} dB, biharmonic "
        f"{psnr(image, peer):.2f} dB; load {load:.2f} -> {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
