"""Watermark removal's handling of compressed photos: the inversion's amplified noise."""

from __future__ import annotations

import numpy as np
import pytest

from napari_doubledip.core.postprocess import smooth_inverted
from napari_doubledip.registry.watermark import WatermarkOptions


def _inverted_with_noise(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three smooth 40x48 photos, a bar of opacity 0.45, the inverted images with noise x 1/(1 - m)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:40, 0:48] / 48.0
    clean = np.stack(
        [np.stack([0.3 + 0.3 * xx, 0.5 + 0.2 * yy, 0.4 + 0.1 * xx * yy]) + 0.05 * k for k in range(3)]
    ).astype(np.float32)
    mask = np.zeros((40, 48), np.float32)
    mask[14:26, 8:40] = 0.45
    noise = rng.normal(0.0, 0.01, clean.shape) / (1.0 - mask)  # the inversion amplifies it
    return clean, (clean + noise * (mask > 0)).astype(np.float32), mask


def test_smooth_inverted_brings_the_inverted_pixels_nearer_and_leaves_the_rest():
    clean, inverted, mask = _inverted_with_noise()
    out = smooth_inverted(inverted, mask, 0.022)
    inside = mask > 0
    before = np.abs(inverted - clean)[..., inside].mean()
    after = np.abs(out - clean)[..., inside].mean()
    assert after < 0.6 * before
    np.testing.assert_array_equal(out[..., ~inside], inverted[..., ~inside])  # bit for bit off the mark


def test_smooth_inverted_off_and_over_an_opaque_part_changes_nothing():
    _, inverted, mask = _inverted_with_noise(1)
    np.testing.assert_array_equal(smooth_inverted(inverted, mask, 0.0), inverted)
    opaque = np.where(mask > 0, 0.9, 0.0).astype(np.float32)  # filled in, not inverted
    np.testing.assert_array_equal(smooth_inverted(inverted, opaque, 0.022, opaque_from=0.75), inverted)


def test_inversion_denoise_option_is_checked():
    assert WatermarkOptions.build().inversion_denoise == pytest.approx(0.022)
    with pytest.raises(ValueError, match="inversion_denoise"):
        WatermarkOptions.build(inversion_denoise=-0.1)
