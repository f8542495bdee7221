"""Clipped noise: 8-bit photos with noise saturate; noise estimates and denoisers must allow for it.

Where many values sit exactly at 0 or 1 the noise was clipped; a denoised value there estimates
``E[clip(x + n)]``, not ``x`` (Foi 2009), and :func:`declip` maps it back.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = [
    "CLIPPED_COUNT",
    "CLIPPED_SHARE",
    "away_from_clipping",
    "clipped_ends",
    "clipped_mean_table",
    "declip",
    "estimate_noise_sigma_unclipped",
    "two_sigma_inside",
]

#: Share (and least number) of values exactly at an end of the range for that end to count as
#: clipped: an image whose darkest or brightest level is a lone pixel or two is not.
CLIPPED_SHARE = 1e-3
CLIPPED_COUNT = 16


def clipped_ends(unit: np.ndarray) -> tuple[bool, bool]:
    """Whether the noise of a unit-range image was clipped at 0 and at 1 (many values exactly there)."""
    least = max(CLIPPED_COUNT, CLIPPED_SHARE * unit.size)
    return bool(np.sum(unit <= 0) > least), bool(np.sum(unit >= 1) > least)


def clipped_mean_table(
    sigma: float, low: bool, high: bool, points: int = 2049
) -> tuple[np.ndarray, np.ndarray]:
    """``(x, g(x))`` for ``g(x) = E[clip(x + n)]``, ``n ~ N(0, sigma^2)``, clipped at 0 and/or 1.

    A denoiser averages clipped noisy values, so where an image saturates it estimates ``g(x)``,
    not the clean value ``x``: 0.4 sigma too bright at a true 0 (Foi 2009, "Clipped noisy images:
    heteroskedastic modeling and practical denoising"). ``g`` increases strictly, so ``x`` is read
    back from the table by interpolation (:func:`declip`). Sampled on ``[-4 sigma, 1 + 4 sigma]``.
    """
    from scipy.special import ndtr

    x = np.linspace(-4 * sigma, 1 + 4 * sigma, points)
    a, b = -x / sigma, (1 - x) / sigma

    def pdf(t: np.ndarray) -> np.ndarray:
        return np.exp(-0.5 * t * t) / np.sqrt(2 * np.pi)

    if low and high:
        g = x * (ndtr(b) - ndtr(a)) + sigma * (pdf(a) - pdf(b)) + (1 - ndtr(b))
    elif low:
        g = x * (1 - ndtr(a)) + sigma * pdf(a)
    elif high:
        g = x * ndtr(b) - sigma * pdf(b) + (1 - ndtr(b))
    else:
        g = x.copy()
    return x, g


def declip(values: np.ndarray, sigma: float, low: bool, high: bool) -> np.ndarray:
    """Clean values from denoised ones where the noise was clipped (inverse of :func:`clipped_mean_table`)."""
    if sigma <= 0 or not (low or high):
        return values
    x, g = clipped_mean_table(sigma, low, high)
    return np.clip(np.interp(values, g, x), 0.0, 1.0).astype(values.dtype)


def away_from_clipping(unit: np.ndarray, sigma: float, size: int = 5) -> np.ndarray:
    """``(C, Y, X)`` booleans: values whose local mean is over two ``sigma`` from 0 and from 1.

    Where an image saturates, its noise is clipped: smaller than ``sigma`` and biased, so a noise
    estimate or a risk estimate that assumes Gaussian noise must leave those values out.
    """
    mean = ndimage.uniform_filter(unit.astype(np.float32), (1, size, size), mode="mirror")
    return two_sigma_inside(mean, sigma)


def two_sigma_inside(mean: np.ndarray, sigma: float) -> np.ndarray:
    """Where a local mean lies over two ``sigma`` inside [0, 1] (its noise not clipped)."""
    return (mean > 2 * sigma) & (mean < 1 - 2 * sigma)


def estimate_noise_sigma_unclipped(unit: np.ndarray) -> float:
    """Gaussian noise standard deviation of a ``(C, Y, X)`` unit-range image that may saturate.

    The median absolute value of the finest diagonal Haar coefficients (over 0.6745), taken only
    where the local mean lies over two sigma inside [0, 1] (iterated from scikit-image's estimate):
    where 8-bit photos saturate (15-18% of the values of the benchmark's photos at sigma = 25/255)
    the clipped noise made scikit-image's estimate 10-20% low (22.5 for 25 on astronaut, 40.7 for
    50) and every filter tuned by it under-smoothed; this one read 25.0-26.3 and 49.6-51.0.
    Images with too few such values keep scikit-image's estimate.
    """
    from .guides import estimate_noise_sigma

    sigma = estimate_noise_sigma(unit)
    ny, nx = (unit.shape[1] // 2) * 2, (unit.shape[2] // 2) * 2
    if ny < 2 or nx < 2:
        return sigma
    v = unit[:, :ny, :nx].astype(np.float32)
    diagonal = np.abs(v[:, 0::2, 0::2] - v[:, 0::2, 1::2] - v[:, 1::2, 0::2] + v[:, 1::2, 1::2]) / 2
    mean = ndimage.uniform_filter(v, (1, 6, 6), mode="mirror")[:, 0::2, 0::2]
    for _ in range(3):
        inside = two_sigma_inside(mean, sigma)
        if inside.mean() < 0.1:
            break
        sigma = float(np.median(diagonal[inside]) / 0.6745)
    return sigma
