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


_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def _luma_only_mark() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Three coloured photos under a white bar (0.45) that brightened their luma but left their chroma."""
    yy, xx = np.mgrid[0:40, 0:48] / 48.0
    clean = np.stack(
        [
            np.stack([0.2 + 0.2 * xx, 0.4 + 0.1 * yy, 0.7 - 0.2 * xx]),  # sky-like
            np.stack([0.8 - 0.1 * yy, 0.6 + 0.1 * xx, 0.2 + 0.1 * yy]),  # stone-like
            np.stack([0.4 + 0.2 * yy, 0.45 + 0.1 * xx, 0.5 - 0.1 * yy]),  # grey-ish
        ]
    )
    mask = np.zeros((40, 48))
    mask[14:26, 8:40] = 0.45
    ycc = np.einsum("ij,kjyx->kiyx", _YCC, clean)
    ycc[:, 0] = mask + (1 - mask) * ycc[:, 0]
    marked = np.einsum("ij,kjyx->kiyx", np.linalg.inv(_YCC), ycc)
    white = (marked - mask) / (1 - mask)  # the RGB inversion of a white blend: chroma x 1/(1 - m)
    return (
        clean.astype(np.float32),
        marked.astype(np.float32),
        white.astype(np.float32),
        mask.astype(np.float32),
    )


def test_refine_chroma_undoes_a_white_mark_as_the_photos_took_it():
    from napari_doubledip.core.postprocess import refine_chroma

    clean, marked, white, mask = _luma_only_mark()
    out, choices = refine_chroma(marked, white, mask, np.ones(3), mask > 0)
    inside = mask > 0
    assert np.abs(out - clean)[..., inside].max() < 0.01  # the chroma rims are gone
    assert np.abs(white - clean)[..., inside].max() > 0.05  # they were there
    assert all(pick != "kept" and pick[1] == 0.0 for row in choices for pick in row)
    np.testing.assert_array_equal(out[..., ~inside], white[..., ~inside])


def test_refine_chroma_leaves_a_coloured_mark_alone():
    from napari_doubledip.core.postprocess import refine_chroma

    _, marked, white, mask = _luma_only_mark()
    out, choices = refine_chroma(marked, white, mask, np.array([1.0, 0.4, 0.1]), mask > 0)
    np.testing.assert_array_equal(out, white)
    assert choices == []


def test_refine_chroma_is_not_led_by_the_noise_the_inversion_amplifies():
    """An RGB blend (the chroma scaled by 1 - m) on noisy photos: the chroma must be scaled back."""
    from napari_doubledip.core.postprocess import refine_chroma

    clean, _, _, mask = _luma_only_mark()
    rng = np.random.default_rng(3)
    marked = mask + (1 - mask) * clean + rng.normal(0.0, 0.02, clean.shape)
    white = ((marked - mask) / (1 - mask)).astype(np.float32)
    _, choices = refine_chroma(marked.astype(np.float32), white, mask, np.ones(3), mask > 0)
    # images 0 and 1 are coloured (their chroma shows the mark); the grey-ish one hardly has chroma
    assert all(pick == "kept" or pick[1] >= 0.75 for row in choices[:2] for pick in row)
