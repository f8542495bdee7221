"""Transparency separation: shapes, dtypes, mixing weights, errors, inputs untouched."""

from __future__ import annotations

import numpy as np
import pytest

import napari_doubledip as dd
from napari_doubledip.core.conversion import to_unit_jointly
from napari_doubledip.core.tasks.separate import SeparateTask

FAST = {
    "device": "cpu",
    "threads": 1,
    "net": {"preset": "default", "channels_down": [8] * 5, "channels_up": [8] * 5},
}


def _mixtures(photo48, rng):
    a = photo48
    b = photo48[::-1, ::-1]
    images = [np.clip(0.7 * a + 0.3 * b + rng.normal(0, 0.02, a.shape), 0, 1) for _ in range(1)]
    images.append(np.clip(0.3 * a + 0.7 * b + rng.normal(0, 0.02, a.shape), 0, 1))
    return images


def test_two_mixtures_shapes_dtypes_alphas(photo48, rng):
    images = [(m * 255).astype(np.uint8) for m in _mixtures(photo48, rng)]
    copies = [m.copy() for m in images]
    result = dd.separate(images, steps=6, **FAST)
    assert len(result.layers) == 2
    for layer in result.layers:
        assert layer.shape == images[0].shape and layer.dtype == np.uint8
    assert result.alphas.shape == (2,)
    assert np.all((result.alphas > 0) & (result.alphas < 1))
    assert result.params["alphas_learned"] is True
    assert result.params["steps_run"] == 6
    assert set(result.history) >= {"step", "total", "data", "exclusion"}
    for m, c in zip(images, copies, strict=True):
        np.testing.assert_array_equal(m, c)


def test_alphas_move_from_their_start(photo48, rng):
    images = _mixtures(photo48, rng)
    result = dd.separate(images, steps=25, alpha_lr=0.05, **FAST)
    assert not np.allclose(result.alphas, [0.6, 0.4], atol=1e-3)


def test_single_image_has_constant_half_weight_and_gray_works(photo48):
    gray = photo48.mean(axis=2).astype(np.float32)
    result = dd.separate(gray, steps=4, **FAST)
    assert result.alphas.tolist() == [0.5]
    assert result.layers[0].shape == gray.shape and result.layers[0].dtype == np.float32
    assert result.params["alphas_learned"] is False


def test_stream_keys(photo48, rng):
    stream = dd.separate_stream(_mixtures(photo48, rng), steps=3, min_interval=0, **FAST)
    snaps = list(stream)
    assert snaps[-1].done
    assert set(snaps[-1].outputs) == {"layer_a", "layer_b", "alphas"}
    assert snaps[-1].outputs["alphas"].shape == (2,)


def test_recombined_layers_fit_the_mixtures(photo48, rng):
    images = _mixtures(photo48, rng)
    result = dd.separate(images, steps=60, ema=0.0, early_stop=False, **FAST)
    for image, alpha in zip(images, result.alphas, strict=True):
        mix = alpha * result.layers[0] + (1 - alpha) * result.layers[1]
        # far closer than a flat grey image would be
        assert np.mean((mix - image) ** 2) < 0.5 * np.mean((image - image.mean()) ** 2)


def test_errors(photo48):
    with pytest.raises(ValueError, match="same shape"):
        SeparateTask([photo48, photo48[:40]])
    with pytest.raises(ValueError, match="empty"):
        SeparateTask([])
    with pytest.raises(ValueError, match="same shape"):
        SeparateTask([photo48, photo48[..., 0]])
    with pytest.raises(ValueError, match="same number of channels"):
        to_unit_jointly([photo48, photo48[..., 0]])
    with pytest.raises(ValueError, match="initial_alphas"):
        SeparateTask([photo48, photo48], initial_alphas=[0.5, 1.0])


def test_joint_range_keeps_mixing_consistent():
    a = np.linspace(0, 100, 16 * 16).reshape(16, 16)
    b = a / 2
    units, layouts = to_unit_jointly([a, b])
    np.testing.assert_allclose(units[1], units[0] / 2, atol=1e-6)
    assert layouts[0].high == layouts[1].high == 100
