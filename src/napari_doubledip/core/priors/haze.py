"""Classical haze priors: the dark channel, the airlight, the guided filter and the transmission envelope.

He et al. 2009 (dark channel prior) and 2010 (guided filter), vectorised numpy / scipy (no pixel
loops); the model is ``I = t * J + (1 - t) * A`` (see :mod:`~napari_doubledip.core.formation`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

__all__ = [
    "dark_channel",
    "dcp_transmission",
    "default_patch_size",
    "envelope_transmission",
    "estimate_airlight",
    "guided_filter",
    "soft_dark_channel",
    "transmission_lower_bound",
]

#: Smallest airlight (unit range) a pixel is divided by: keeps ``I / A`` finite for a black haze.
MIN_AIRLIGHT = 1e-3


def default_patch_size(shape: tuple[int, int]) -> int:
    """Dark-channel patch size for an image of ``(Y, X)`` size: odd, about 1/25 of the shorter side, >= 3.

    He et al. use 15 pixels on 400-600 pixel photos; the patch must shrink with the image.
    """
    size = int(round(min(shape) / 25))
    return max(3, size | 1)


def dark_channel(unit: np.ndarray, patch: int) -> np.ndarray:
    """Dark channel of a ``(C, Y, X)`` image: the minimum over channels and a ``patch`` x ``patch`` window."""
    from scipy import ndimage

    return ndimage.minimum_filter(unit.min(axis=0), size=int(patch), mode="nearest")


def estimate_airlight(unit: np.ndarray, patch: int, fraction: float = 0.001) -> np.ndarray:
    """Airlight ``(C,)`` of a unit-range ``(C, Y, X)`` hazy image from its dark channel.

    Takes the brightest ``fraction`` of the dark channel (at least one pixel), the most haze-opaque
    pixels, and returns the per-channel mean colour of the brighter half of them (by intensity): the
    mean is robust to a single bright object, the brighter half keeps it from being pulled down by
    the scene showing through the haze.
    """
    c = unit.shape[0]
    dark = dark_channel(unit, patch).ravel()
    n = max(1, int(round(fraction * dark.size)))
    top = np.argpartition(dark, -n)[-n:]
    colours = unit.reshape(c, -1)[:, top]  # (C, n)
    intensity = colours.mean(axis=0)
    keep = np.argsort(intensity)[len(intensity) // 2 :]
    return colours[:, keep].mean(axis=1).astype(np.float64)


def guided_filter(guide: np.ndarray, source: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Edge-preserving smoothing of ``source`` (Y, X) guided by a gray ``guide`` (He et al. 2010).

    Box means via :func:`scipy.ndimage.uniform_filter` (window ``2 * radius + 1``).
    """
    from scipy import ndimage

    size = 2 * int(radius) + 1
    g = guide.astype(np.float64)
    s = source.astype(np.float64)

    def box(x: np.ndarray) -> np.ndarray:
        return ndimage.uniform_filter(x, size=size, mode="reflect")

    mean_g, mean_s = box(g), box(s)
    cov = box(g * s) - mean_g * mean_s
    var = box(g * g) - mean_g**2
    a = cov / (var + eps)
    b = mean_s - a * mean_g
    return box(a) * g + box(b)


def dcp_transmission(
    unit: np.ndarray,
    airlight: np.ndarray,
    patch: int,
    omega: float = 0.95,
    radius: int | None = None,
    eps: float = 1e-3,
) -> np.ndarray:
    """Dark-channel-prior transmission ``1 - omega * dark(I / A)``, refined by a guided filter.

    Parameters
    ----------
    unit
        ``(C, Y, X)`` hazy image in [0, 1].
    airlight
        ``(C,)`` in the same units.
    patch
        Dark-channel window.
    omega
        Keeps a little haze (He et al.: 0.95).
    radius, eps
        Guided-filter window radius (default ``4 * patch``) and regularisation.

    Returns
    -------
    float32 ``(Y, X)``, not clipped.
    """
    a = np.maximum(np.asarray(airlight, np.float64), MIN_AIRLIGHT)[:, None, None]
    raw = 1.0 - omega * dark_channel(unit / a, patch)
    guide = unit.mean(axis=0)
    radius = 4 * patch if radius is None else radius
    return guided_filter(guide, raw, radius, eps).astype(np.float32)


def transmission_lower_bound(unit: np.ndarray, airlight: np.ndarray) -> np.ndarray:
    """Per-pixel lowest transmission that keeps the clear image non-negative: ``1 - min_c(I_c / A_c)``.

    From ``J = (I - A) / t + A >= 0``; equality where the clear image has a black channel.
    """
    a = np.maximum(np.asarray(airlight, np.float64), MIN_AIRLIGHT)[:, None, None]
    return 1.0 - (unit / a).min(axis=0)


def envelope_transmission(
    unit: np.ndarray,
    airlight: np.ndarray,
    omega: float = 0.95,
    sigma: float | None = None,
    iterations: int = 100,
    work_size: int = 512,
) -> np.ndarray:
    """A smooth transmission resting on the per-pixel lower bound from below-zero clear values.

    The dark-channel idea without its patches: the transmission is smooth and the clear image
    has a black channel somewhere near every pixel, so ``t`` is the smallest smooth surface over
    :func:`transmission_lower_bound`. Computed by repeated Gaussian smoothing of
    ``max(t, bound)`` (``iterations`` times, ``sigma`` default ``min(Y, X) / 64``: the envelope
    spreads over about ``sigma * sqrt(iterations)`` pixels), then ``1 - omega * (1 - t)`` keeps a
    little haze as He et al. do. Unlike the dark channel's patch minimum it follows a depth
    ramp instead of being piecewise constant, and needs no edge-aware refinement. Images whose
    shorter side exceeds ``work_size`` are processed on a coarser grid of the bound's block
    maxima (the cost stays that of a ``work_size`` image) and interpolated back.

    Returns
    -------
    float32 ``(Y, X)``, not clipped.
    """
    from scipy import ndimage

    full = transmission_lower_bound(unit, airlight)
    if sigma is None:
        sigma = max(1.0, min(full.shape) / 64)
    # the envelope is smooth: on large images compute it on a grid of block maxima of the bound
    # (a block's maximum keeps the envelope above every pixel of it) and interpolate back
    factor = max(1, int(np.ceil(min(full.shape) / work_size)))
    bound = full
    if factor > 1:
        h, w = full.shape
        padded = np.pad(full, ((0, (-h) % factor), (0, (-w) % factor)), mode="edge")
        bound = padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor).max(
            axis=(1, 3)
        )
    t = bound.copy()
    for _ in range(int(iterations)):
        t = ndimage.gaussian_filter(np.maximum(t, bound), sigma / factor, mode="nearest")
    if factor > 1:
        coords = [(np.arange(n) + 0.5) / factor - 0.5 for n in full.shape]
        grid = np.meshgrid(*coords, indexing="ij")
        t = ndimage.map_coordinates(t, grid, order=1, mode="nearest")
    return (1.0 - omega * (1.0 - t)).astype(np.float32)


def soft_dark_channel(image: torch.Tensor, patch: int) -> torch.Tensor:
    """Dark channel of a ``(1, C, Y, X)`` tensor (min over channels and a window), differentiable."""
    darkest = image.min(dim=1, keepdim=True).values
    return -F.max_pool2d(-darkest, kernel_size=patch, stride=1, padding=patch // 2)
