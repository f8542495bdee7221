"""Fixed-step quality at real sizes, to compare two versions of the engine (load-independent).

    PYTHONPATH=<tree>/src python benchmarks/real_sizes_check.py denoise 100 astronaut:256,camera:512,fotolia1.jpg
    PYTHONPATH=<tree>/src python benchmarks/real_sizes_check.py inpaint 1 astronaut:512,hongkong.png

``NAME:SIZE`` is a centre crop of a scikit-image photo; a ``.png``/``.jpg`` name is read from
``../shared/data/reference-demos`` (run from the repository root) at its own size. Denoising:
Gaussian noise of sigma 25/255 clipped to 8 bits, NLM (as scikit-image's example sets it) beside
it; inpainting: 50% of the pixels missing, biharmonic filling beside it (``1`` step: the start).
"""

import sys
import time

import numpy as np
from skimage import data, io
from skimage.metrics import peak_signal_noise_ratio as psnr
from skimage.restoration import denoise_nl_means, estimate_sigma, inpaint_biharmonic

import napari_doubledip as dd

task, steps = sys.argv[1], int(sys.argv[2])
cases = sys.argv[3].split(",")


def load(c):
    if c.endswith((".png", ".jpg")):
        return io.imread("../shared/data/reference-demos/" + c)[..., :3] / 255.0
    name, size = c.split(":")
    size = int(size)
    img = getattr(data, name)()
    img = img / 255.0 if img.dtype == np.uint8 else img / img.max()
    img = img[..., :3] if img.ndim == 3 else img
    h, w = img.shape[:2]
    y, x = (h - size) // 2, (w - size) // 2
    return img[y : y + size, x : x + size]


for c in cases:
    clean = load(c)
    rng = np.random.default_rng(0)
    ca = -1 if clean.ndim == 3 else None
    t = time.perf_counter()
    if task == "denoise":
        noisy = np.round(np.clip(clean + rng.normal(0, 25 / 255, clean.shape), 0, 1) * 255) / 255
        s = float(np.mean(estimate_sigma(noisy, channel_axis=ca)))
        peer = psnr(
            clean, denoise_nl_means(noisy, h=0.8 * s, sigma=s, fast_mode=True, channel_axis=ca), data_range=1
        )
        t = time.perf_counter()
        r = dd.denoise(noisy, steps=steps, seed=0, threads=1)
    else:
        mask = rng.random(clean.shape[:2]) < 0.5
        peer = psnr(clean, np.clip(inpaint_biharmonic(clean, mask, channel_axis=ca), 0, 1), data_range=1)
        t = time.perf_counter()
        r = dd.inpaint(clean, mask, steps=steps, seed=0, threads=1)
    print(
        f"{task} {c} {clean.shape[1]}x{clean.shape[0]} peer {peer:.2f} ours {psnr(clean, r.image, data_range=1):.2f} steps {r.params['steps_run']} wall {time.perf_counter() - t:.1f}s",
        flush=True,
    )
