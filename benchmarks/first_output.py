"""Time to the first output of a denoising stream, its PSNR, and scikit-image's NLM on the same input.

Usage: ``python first_output.py SIZE STEPS IMAGE`` (IMAGE: an ``skimage.data`` photo, centre crop of
SIZE², σ = 25/255 Gaussian noise clipped to [0, 1]; 2 torch threads). Prints one line. Run it
interleaved with another checkout's ``src`` on ``PYTHONPATH`` to compare two commits
(``benchmarks/results/first_output_ab.md``).
"""

from __future__ import annotations

import sys
import time

import numpy as np
from skimage import data
from skimage.restoration import denoise_nl_means, estimate_sigma

import napari_doubledip as dd


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB) of ``a`` against ``b``, both in [0, 1]."""
    return float(10 * np.log10(1 / np.mean((a.astype(np.float64) - b) ** 2)))


def main() -> None:
    size, steps, name = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    img = getattr(data, name)()
    y, x = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
    clean = img[y : y + size, x : x + size].astype(np.float32) / 255
    rng = np.random.default_rng(0)
    noisy = np.clip(clean + rng.normal(0, 25 / 255, clean.shape), 0, 1).astype(np.float32)
    start = time.perf_counter()
    first = first_image = first_step = None
    count = 0
    for snap in dd.denoise_stream(noisy, steps=steps, threads=2, seed=0, min_interval=0):
        count += 1
        if first is None:
            first, first_image, first_step = (
                time.perf_counter() - start,
                snap.outputs["image"].copy(),
                snap.step,
            )
    total = time.perf_counter() - start
    channel = -1 if noisy.ndim == 3 else None
    sigma = estimate_sigma(noisy, channel_axis=channel, average_sigmas=True)
    nlm = denoise_nl_means(
        noisy,
        h=0.8 * sigma,
        sigma=sigma,
        fast_mode=True,
        patch_size=5,
        patch_distance=6,
        channel_axis=channel,
    )
    print(
        f"size {size} {name} first {first:.2f}s at step {first_step} psnr {psnr(first_image, clean):.2f} "
        f"nlm {psnr(nlm, clean):.2f}, total {total:.2f}s snaps {count}"
    )


if __name__ == "__main__":
    main()
