"""The denoising start (the SURE blend) with free vs summing-to-one weights, on crops beyond the benchmark photos.

    python benchmarks/sure_crops.py SIZE

Centre and top-left crops of scikit-image pictures (photos, a binary silhouette, a logo, a scan,
microscopy), Gaussian noise of sigma 25/255 clipped to 8 bits; prints the PSNR of scikit-image's
NLM (as its example sets it) and of ``guides.sure_blend`` with ``SURE_AFFINE`` off and on.
"""

import sys

import numpy as np
import torch
from skimage import data
from skimage.metrics import peak_signal_noise_ratio as psnr
from skimage.restoration import denoise_nl_means, estimate_sigma

from napari_doubledip.core import guides
from napari_doubledip.core.clipping import estimate_noise_sigma_unclipped

torch.set_num_threads(2)
photos = {
    n: getattr(data, n)()
    for n in [
        "astronaut",
        "camera",
        "coffee",
        "chelsea",
        "rocket",
        "brick",
        "grass",
        "retina",
        "immunohistochemistry",
        "moon",
        "page",
        "hubble_deep_field",
        "horse",
        "logo",
    ]
}
size = int(sys.argv[1])
rows = []
for name, img in photos.items():
    img = img / 255.0 if img.dtype == np.uint8 else img.astype(float) / img.max()
    img = img[..., :3] if img.ndim == 3 else img
    h, w = img.shape[:2]
    crops = {
        "centre": img[(h - size) // 2 : (h - size) // 2 + size, (w - size) // 2 : (w - size) // 2 + size],
        "top-left": img[:size, :size],
    }
    for where, clean in crops.items():
        rng = np.random.default_rng(0)
        noisy = np.round(np.clip(clean + rng.normal(0, 25 / 255, clean.shape), 0, 1) * 255) / 255
        unit = (noisy[None] if noisy.ndim == 2 else np.moveaxis(noisy, -1, 0)).astype(np.float32)
        sigma = estimate_noise_sigma_unclipped(unit)
        out = {}
        for aff in (False, True):
            guides.SURE_AFFINE = aff
            g, wts = guides.sure_blend(unit, sigma, 0)
            g = g[0] if noisy.ndim == 2 else np.moveaxis(g, 0, -1)
            out[aff] = (psnr(clean, g, data_range=1), wts.sum())
        s = float(np.mean(estimate_sigma(noisy, channel_axis=-1 if noisy.ndim == 3 else None)))
        nl = psnr(
            clean,
            denoise_nl_means(
                noisy, h=0.8 * s, sigma=s, fast_mode=True, channel_axis=-1 if noisy.ndim == 3 else None
            ),
            data_range=1,
        )
        print(
            f"{name:22s} {where:8s} nlm {nl:6.2f}  free {out[False][0]:6.2f} (sum {out[False][1]:.3f})  affine {out[True][0]:6.2f}  diff {out[True][0] - out[False][0]:+.2f}",
            flush=True,
        )
