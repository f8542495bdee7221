"""Clipped noise: 8-bit photos with noise saturate, and a denoiser then estimates a biased mean.

Where many values sit exactly at 0 or 1 the noise was clipped; a denoised value there estimates
``E[clip(x + n)]``, not ``x`` (Foi 2009), and :func:`declip` maps it back.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CLIPPED_COUNT", "CLIPPED_SHARE", "clipped_ends", "clipped_mean_table", "declip"]

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
