"""Shared test fixtures: tiny images, fixed seeds."""

from __future__ import annotations

import numpy as np
import pytest


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB."""
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float(10 * np.log10(data_range**2 / mse))


@pytest.fixture(scope="session")
def photo48() -> np.ndarray:
    """A 48x48 RGB crop of skimage's astronaut, float in [0, 1]."""
    from skimage import data, transform

    return transform.resize(data.astronaut()[30:250, 130:350], (48, 48), anti_aliasing=True)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def viewer(make_napari_viewer_proxy):
    """A napari viewer for the dock-widget tests (napari's own fixture, closed after the test)."""
    return make_napari_viewer_proxy()


def watermark_photos(size: int = 48) -> list[np.ndarray]:
    """Three bundled photos (astronaut, coffee, chelsea) at ``size``, dimmed to 0.8 so a white mark stays inside [0, 1]."""
    from napari_doubledip import samples

    return [(0.8 * samples.photo(n, size)).astype(np.float32) for n in ("astronaut", "coffee", "chelsea")]


def watermark_units(images: list[np.ndarray]) -> np.ndarray:
    """``(K, C, Y, X)`` float64 stack of ``(Y, X, C)`` images, as the watermark priors take them."""
    return np.stack([np.moveaxis(np.asarray(i, np.float64), -1, 0) for i in images])
