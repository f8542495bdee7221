"""Dehazing: shapes, dtypes, transmission, airlight, quality on a tiny sample, errors, inputs untouched."""

from __future__ import annotations

import json

import numpy as np
import pytest

import napari_doubledip as dd
from napari_doubledip import samples
from napari_doubledip.core.priors.haze import (
    dark_channel,
    default_patch_size,
    envelope_transmission,
    estimate_airlight,
    guided_filter,
    transmission_lower_bound,
)
from napari_doubledip.core.tasks.dehaze import DehazeTask

from .conftest import psnr

FAST = {
    "device": "cpu",
    "threads": 1,
    "net": {"preset": "default", "channels_down": [8] * 5, "channels_up": [8] * 5},
}
TRUE_AIRLIGHT = (0.85, 0.88, 0.92)


@pytest.fixture(scope="module")
def hazy48():
    return samples.hazy_photo(size=48, name="astronaut", airlight=TRUE_AIRLIGHT)


def test_uint8_rgb_shapes_dtypes_transmission(hazy48):
    image = (hazy48[0] * 255).round().astype(np.uint8)
    copy = image.copy()
    result = dd.dehaze(image, steps=5, **FAST)
    assert result.image.shape == image.shape and result.image.dtype == np.uint8
    assert result.transmission.shape == image.shape[:2] and result.transmission.dtype == np.float32
    assert np.all(result.transmission > 0) and np.all(result.transmission <= 1)
    assert result.airlight.shape == (3,)
    assert np.all((result.airlight > 100) & (result.airlight <= 255))  # uint8 units, not [0, 1]
    assert result.params["airlight_source"] == "estimated"
    assert result.params["steps_run"] == 5
    assert set(result.history) >= {"step", "total", "data", "t_prior", "t_smooth"}
    json.dumps(result.params)
    np.testing.assert_array_equal(image, copy)


def test_float_gray_works(hazy48):
    gray = hazy48[0].mean(axis=2).astype(np.float32)
    copy = gray.copy()
    result = dd.dehaze(gray, steps=4, **FAST)
    assert result.image.shape == gray.shape and result.image.dtype == np.float32
    assert result.transmission.shape == gray.shape
    assert result.airlight.shape == (1,)
    assert result.image.min() >= 0.0 and result.image.max() <= 1.0
    np.testing.assert_array_equal(gray, copy)


def test_rgba_alpha_passed_through(hazy48):
    alpha = np.linspace(0, 1, 48 * 48, dtype=np.float32).reshape(48, 48)
    rgba = np.concatenate([hazy48[0], alpha[..., None]], axis=-1)
    result = dd.dehaze(rgba, steps=3, **FAST)
    assert result.image.shape == rgba.shape
    np.testing.assert_array_equal(result.image[..., 3], alpha)
    assert result.airlight.shape == (3,)


def test_given_airlight_is_used_scalar_and_per_channel(hazy48):
    image = (hazy48[0] * 255).round().astype(np.uint8)
    given = [210.0, 220.0, 230.0]
    result = dd.dehaze(image, airlight=given, steps=2, **FAST)
    np.testing.assert_allclose(result.airlight, given, rtol=1e-6)
    assert result.params["airlight_source"] == "given"
    scalar = dd.dehaze(image, airlight=200, steps=2, **FAST)
    np.testing.assert_allclose(scalar.airlight, [200.0] * 3, rtol=1e-6)


def test_estimated_airlight_is_near_the_true_one(hazy48):
    hazy = hazy48[0]
    estimate = estimate_airlight(np.moveaxis(hazy, -1, 0), default_patch_size(hazy.shape[:2]))
    np.testing.assert_allclose(estimate, TRUE_AIRLIGHT, atol=0.04)
    # and the task reports it in the image's units (float in [0, 1] here)
    task = DehazeTask(hazy)
    np.testing.assert_allclose(task.airlight_in_image_units(), estimate, rtol=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_dehazing_raises_psnr(hazy48, seed):
    hazy, clear, _, _ = hazy48
    result = dd.dehaze(hazy, steps=40, device="cpu", threads=1, seed=seed)
    before, after = psnr(hazy, clear), psnr(result.image, clear)
    assert after > before + 6.0, (before, after)


def test_generator_output_and_dcp_guide_also_dehaze(hazy48):
    hazy, clear, _, _ = hazy48
    result = dd.dehaze(hazy, steps=40, device="cpu", threads=1, output="generator", guide="dcp")
    assert result.params["output"] == "generator" and result.params["guide"] == "dcp"
    assert psnr(result.image, clear) > psnr(hazy, clear) + 2.0


def test_learnt_transmission_is_near_the_true_one(hazy48):
    hazy, _, transmission, _ = hazy48
    result = dd.dehaze(hazy, steps=30, **FAST)
    err = np.mean(np.abs(result.transmission - transmission))
    assert err < 0.1, err  # "no haze" (t = 1) is 0.53 off, the true airlight and t give 0


def test_envelope_rests_on_the_lower_bound(hazy48):
    hazy, _, transmission, airlight = hazy48
    unit = np.moveaxis(hazy, -1, 0)
    bound = transmission_lower_bound(unit, airlight)
    assert np.all(bound <= transmission + 1e-5)  # J >= 0 everywhere
    envelope = envelope_transmission(unit, airlight, omega=1.0)
    assert np.mean(envelope >= bound - 0.02) > 0.97
    assert np.mean(np.abs(envelope - transmission)) < 0.1


def test_stream_yields_snapshots_with_keys(hazy48):
    snaps = list(dd.dehaze_stream(hazy48[0], steps=3, min_interval=0, **FAST))
    assert snaps[-1].done and len(snaps) >= 2
    for snap in snaps:
        assert set(snap.outputs) == {"image", "transmission"}
        assert snap.outputs["transmission"].shape == (48, 48)
        assert snap.outputs["image"].shape == (48, 48, 3)


def test_bad_inputs_raise_clear_errors(hazy48):
    hazy = hazy48[0]
    bad = hazy.copy()
    bad[3, 4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        DehazeTask(bad)
    with pytest.raises(ValueError, match="too small"):
        DehazeTask(hazy[:8, :8])
    with pytest.raises(ValueError, match="2 values but the image has 3 channel"):
        DehazeTask(hazy, airlight=[0.9, 0.9])
    with pytest.raises(ValueError, match="outside the image's value range"):
        DehazeTask((hazy * 255).astype(np.uint8), airlight=300)
    with pytest.raises(ValueError, match="outside the image's value range"):
        DehazeTask(hazy, airlight=[0.9, 1.2, 0.9])
    with pytest.raises(ValueError, match="NaN"):
        DehazeTask(hazy, airlight=[0.9, np.nan, 0.9])
    with pytest.raises(ValueError, match="airlight must be a number"):
        DehazeTask(hazy, airlight="white")
    with pytest.raises(ValueError, match="t_min"):
        DehazeTask(hazy, t_min=0.0)
    with pytest.raises(ValueError, match="patch"):
        DehazeTask(hazy, patch=4)
    with pytest.raises(ValueError, match="lr"):
        DehazeTask(hazy, lr=0)
    with pytest.raises(ValueError, match="guide"):
        DehazeTask(hazy, guide="magic")
    with pytest.raises(ValueError, match="output"):
        DehazeTask(hazy, output="both")
    assert np.isnan(bad[3, 4, 1])  # the caller's array is untouched


def test_dark_channel_and_guided_filter_by_hand():
    unit = np.ones((3, 16, 16), np.float32)
    unit[1, 5, 5] = 0.2
    dark = dark_channel(unit, 3)
    assert dark[5, 5] == pytest.approx(0.2) and dark[4, 6] == pytest.approx(0.2)
    assert dark[5, 7] == pytest.approx(1.0)
    guide = np.random.default_rng(0).random((16, 16))
    flat = guided_filter(guide, np.full((16, 16), 0.3), 2, 1e-3)
    np.testing.assert_allclose(flat, 0.3, atol=1e-6)
    assert default_patch_size((48, 48)) == 3 and default_patch_size((128, 128)) == 5


def test_envelope_on_a_coarse_grid_stays_close_to_the_full_one(hazy48):
    hazy, _, transmission, airlight = hazy48
    unit = np.moveaxis(hazy, -1, 0)
    full = envelope_transmission(unit, airlight, omega=1.0)
    coarse = envelope_transmission(unit, airlight, omega=1.0, work_size=24)  # 2x2 blocks
    assert coarse.shape == full.shape
    assert np.mean(np.abs(coarse - full)) < 0.02
    assert np.mean(np.abs(coarse - transmission)) < 0.05
