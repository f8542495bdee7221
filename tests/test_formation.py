"""The image-formation models: the blend and its two inverses, for tensors and arrays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_doubledip.core.formation import blend, solve_first, solve_second


@pytest.fixture
def layers():
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 3, 8, 8))
    weight = rng.uniform(0.1, 0.9, (1, 8, 8))
    return a, b, weight


def test_blend_is_the_weighted_mixture(layers):
    a, b, weight = layers
    image = blend(weight, a, b)
    np.testing.assert_allclose(image, weight * a + (1 - weight) * b)
    np.testing.assert_array_equal(blend(np.ones_like(weight), a, b), a)
    np.testing.assert_array_equal(blend(np.zeros_like(weight), a, b), b)


def test_each_inverse_recovers_its_layer(layers):
    a, b, weight = layers
    image = blend(weight, a, b)
    np.testing.assert_allclose(solve_first(image, weight, b), a, atol=1e-12)
    np.testing.assert_allclose(solve_second(image, weight, a), b, atol=1e-12)


def test_tensors_and_scalar_layers_work_too(layers):
    a, _b, weight = layers
    t_weight, t_a = torch.from_numpy(weight), torch.from_numpy(a)
    airlight = torch.tensor([0.9, 0.8, 0.7], dtype=torch.float64).view(3, 1, 1)
    hazy = blend(t_weight, t_a, airlight)
    assert isinstance(hazy, torch.Tensor)
    torch.testing.assert_close(solve_first(hazy, t_weight, airlight), t_a)
    np.testing.assert_allclose(blend(weight, 1.0, a), weight + (1 - weight) * a)


def test_the_floor_bounds_the_divisor():
    image = np.array([0.5])
    opaque = np.array([1.0])
    assert np.isfinite(solve_second(image, opaque, np.array([0.2]), floor=1e-3)).all()
    assert solve_second(image, opaque, np.array([0.2]), floor=1e-3)[0] == pytest.approx(0.3 / 1e-3)
    dark = torch.tensor([0.0])
    assert solve_first(torch.tensor([0.4]), dark, torch.tensor([0.5]), floor=0.1).item() == pytest.approx(
        -0.1 / 0.1
    )
