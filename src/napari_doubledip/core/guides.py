"""Classical estimates that guide a DIP generator, and the held-out pixels that judge it.

A guided generator (:class:`~napari_doubledip.core.tasks.reconstruction.ImageReconstructionTask`
with ``guide`` set) takes a classical estimate of the clean image as an extra input and outputs a
correction to it, starting at zero: the run starts at the classical result (non-local means for
denoising, biharmonic filling for inpainting) and the generator adds what its structure finds.

Held-out pixels keep the run honest: a small random set of pixels is left out of the fit (and out
of the guide's input), so the error there measures how well the output predicts pixels it never
saw. For independent noise its expectation is the true mean squared error plus the noise variance,
so the run keeps the output with the lowest held-out error, whenever it stops.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["biharmonic_guide", "estimate_noise_sigma", "fill_from_neighbours", "holdout_mask", "nlm_guide"]

#: Non-local means filtering strength as a multiple of the noise sigma (scikit-image's example
#: value; on our 256^2 crops it beat 0.6 and 1.0 and larger patches, see BENCHMARKS.md).
NLM_H_PER_SIGMA = 0.8


def holdout_mask(
    shape: tuple[int, int], fraction: float, seed: int, allowed: np.ndarray | None = None
) -> np.ndarray:
    """A seeded random ``(Y, X)`` boolean mask of about ``fraction`` of the ``allowed`` pixels.

    Parameters
    ----------
    shape
        Image size.
    fraction
        Share of the allowed pixels to hold out, in ``[0, 0.5]``.
    seed
        The run's seed (the same seed holds out the same pixels).
    allowed
        Pixels that may be held out (``None``: all).
    """
    if not 0 <= fraction <= 0.5:
        raise ValueError(f"holdout must be in [0, 0.5], got {fraction}")
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x6F1D])
    mask = rng.random(shape) < fraction
    if allowed is not None:
        mask &= allowed
    return mask


def fill_from_neighbours(
    unit: np.ndarray, holes: np.ndarray, radius: int = 2, noise_sigma: float = 0.0, seed: int = 0
) -> np.ndarray:
    """``(C, Y, X)`` copy of ``unit`` whose ``holes`` hold the mean of their known neighbours.

    Used so that a guide computed from the image carries no trace of the held-out pixels' own
    values (their noise must stay unseen for the held-out error to be unbiased). With
    ``noise_sigma`` the filled values get fresh Gaussian noise of that level (seeded), so that
    a patch-based filter sees them as ordinary noisy pixels: smooth holes among noisy pixels
    made non-local means match fewer patches (0.5 dB worse at 256^2 with 5% holes).
    """
    if not holes.any():
        return unit
    known = (~holes).astype(np.float32)
    size = 2 * radius + 1
    weight = ndimage.uniform_filter(known, size, mode="mirror")
    out = unit.copy()
    for c in range(unit.shape[0]):
        mean = ndimage.uniform_filter(unit[c] * known, size, mode="mirror") / np.maximum(weight, 1e-6)
        out[c][holes] = mean[holes]
    # a hole with no known neighbour within the radius (rare): the image's mean
    lonely = holes & (weight < 1e-6)
    if lonely.any():
        out[:, lonely] = unit[:, ~holes].mean(axis=1, keepdims=True)
    if noise_sigma > 0:
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5EED])
        out[:, holes] += rng.normal(0.0, noise_sigma, (unit.shape[0], int(holes.sum()))).astype(out.dtype)
    return out


def estimate_noise_sigma(unit: np.ndarray) -> float:
    """Gaussian noise standard deviation of a ``(C, Y, X)`` unit-range image.

    scikit-image's ``estimate_sigma`` (median absolute deviation of the finest diagonal wavelet
    coefficients, Donoho & Johnstone), averaged over channels: the estimate a user of
    scikit-image's non-local means passes to it, so the guide is exactly that filter's result.
    """
    from skimage.restoration import estimate_sigma

    return float(np.mean(estimate_sigma(np.moveaxis(unit, 0, -1), channel_axis=-1)))


def nlm_guide(unit: np.ndarray, sigma: float) -> np.ndarray:
    """Non-local means of a ``(C, Y, X)`` unit-range image with noise ``sigma`` (unit range).

    Fast mode, 5x5 patches, 13x13 search window, ``h = 0.8 sigma``: about 0.1 s at 256^2 and
    0.4 s at 512^2 on two cores. ``sigma = 0`` returns the image itself.
    """
    from skimage.restoration import denoise_nl_means

    if sigma <= 0:
        return unit.astype(np.float32, copy=True)
    image = np.moveaxis(unit, 0, -1)
    out = denoise_nl_means(
        image,
        h=NLM_H_PER_SIGMA * sigma,
        sigma=sigma,
        fast_mode=True,
        patch_size=5,
        patch_distance=6,
        channel_axis=-1,
    )
    out = out.reshape(image.shape)  # scikit-image drops a single channel axis
    return np.ascontiguousarray(np.moveaxis(out, -1, 0), dtype=np.float32)


def biharmonic_guide(unit: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Biharmonic filling of the ``missing`` pixels of a ``(C, Y, X)`` image (known pixels kept)."""
    from skimage.restoration import inpaint_biharmonic

    if not missing.any():
        return unit.astype(np.float32, copy=True)
    image = np.moveaxis(unit, 0, -1)
    out = inpaint_biharmonic(image, missing, channel_axis=-1)
    return np.ascontiguousarray(np.clip(np.moveaxis(out, -1, 0), 0.0, 1.0), dtype=np.float32)
