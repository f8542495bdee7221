"""Polyharmonic filling (core/polyharmonic.py) and its place among the inpainting candidates."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_doubledip.core import fill_folds, polyharmonic
from napari_doubledip.core.guides import biharmonic_guide


def smooth_image(size: int = 48, seed: int = 0, width: float = 8.0) -> np.ndarray:
    field = ndimage.gaussian_filter(np.random.default_rng(seed).random((size, size)), width)
    return (0.2 + 0.6 * (field - field.min()) / np.ptp(field))[None].astype(np.float32)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


@pytest.mark.parametrize("order", [1, 2, 3])
def test_known_pixels_stay_and_a_constant_is_filled_with_itself(order):
    missing = np.random.default_rng(0).random((24, 24)) < 0.6
    unit = np.random.default_rng(1).random((2, 24, 24)).astype(np.float32)
    out = polyharmonic.polyharmonic_fill(unit, missing, order)
    assert np.array_equal(out[:, ~missing], unit[:, ~missing])
    flat = np.where(missing, 0.0, 0.4).astype(np.float32)[None]
    assert np.allclose(polyharmonic.polyharmonic_fill(flat, missing, order), 0.4, atol=1e-5)


def test_order_two_is_biharmonic_filling_and_order_three_fills_a_smooth_image_better():
    unit = smooth_image()
    missing = np.random.default_rng(2).random((48, 48)) < 0.7
    damaged = np.where(missing, 0.0, unit).astype(np.float32)
    two = polyharmonic.polyharmonic_fill(damaged, missing, 2)
    assert np.abs(two - biharmonic_guide(damaged, missing)).max() < 2e-3
    three = polyharmonic.polyharmonic_fill(damaged, missing, 3)
    one = polyharmonic.polyharmonic_fill(damaged, missing, 1)
    assert psnr(three, unit) > psnr(two, unit) + 1.0 > psnr(one, unit) + 2.0


def test_large_images_are_solved_in_tiles_that_join_without_seams(monkeypatch):
    monkeypatch.setattr(polyharmonic, "DIRECT_PIXELS", 32 * 32)
    monkeypatch.setattr(polyharmonic, "TILE", 24)
    unit = smooth_image(60, seed=3, width=4.0)
    missing = np.random.default_rng(3).random((60, 60)) < 0.6
    damaged = np.where(missing, 0.0, unit).astype(np.float32)
    direct = np.clip(polyharmonic._solve(damaged, missing, 3), 0, 1)
    with pytest.raises(ValueError, match="border"):
        polyharmonic.polyharmonic_fill(damaged, missing, 3)
    tiled = polyharmonic.polyharmonic_fill(damaged, missing, 3, border=biharmonic_guide(damaged, missing))
    assert np.abs(tiled - direct).max() < 1e-3


def test_polyharmonic_candidates_are_biharmonic_filling_inside_large_holes():
    unit = smooth_image(48, seed=4)
    missing = np.random.default_rng(4).random((48, 48)) < 0.5
    missing[10:34, 12:36] = True  # a 24 x 24 hole: its centre is 12 px from any known pixel
    damaged = np.where(missing, 0.0, unit).astype(np.float32)
    base = biharmonic_guide(damaged, missing)
    fills = fill_folds.polyharmonic_candidates(damaged, missing, np.array([True, True]), base)
    far = ndimage.distance_transform_edt(missing) > fill_folds.POLYHARMONIC_REACH
    near = missing & ~far
    for fill in fills:
        assert fill is not None
        assert np.array_equal(fill[:, far], base[:, far])
        assert not np.allclose(fill[:, near], base[:, near])
    assert fill_folds.polyharmonic_candidates(damaged, missing, np.array([False, False]), base) == [
        None,
        None,
    ]


def test_folds_confirm_triharmonic_filling_on_smooth_tissue_where_biharmonic_beat_every_refinement():
    from skimage import data

    from napari_doubledip.core.guides import blend_fills

    unit = np.moveaxis(data.immunohistochemistry()[224:288, 224:288] / 255.0, -1, 0).astype(np.float32)
    missing = np.random.default_rng(0).random((64, 64)) < 0.5
    damaged = np.where(missing, 0.0, unit).astype(np.float32)
    weights, score = fill_folds.cross_validated_fill_weights(damaged, missing, seed=0)
    assert score < -fill_folds.FOLD_CONFIDENCE_Z
    assert weights[-1] > 0.5  # mostly the triharmonic fill
    candidates = fill_folds.all_fill_candidates(damaged, missing)
    assert psnr(blend_fills(candidates, weights), unit) > psnr(candidates[0], unit) + 0.3
