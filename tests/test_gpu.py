"""The CUDA path (skipped on machines without a CUDA GPU, as in CI)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import napari_doubledip as dd  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_auto_device_picks_cuda_and_denoises(photo48, rng):
    noisy = np.clip(photo48 + rng.normal(0, 0.1, photo48.shape), 0, 1)
    result = dd.denoise(noisy, steps=100, early_stop=False)
    assert result.params["device"].startswith("cuda")
    assert result.params["precision"] in ("bfloat16", "float32")
    mse_in = np.mean((noisy - photo48) ** 2)
    mse_out = np.mean((result.image - photo48) ** 2)
    assert mse_out < mse_in


def test_gpu_memory_is_released_after_a_run(photo48):
    dd.denoise(photo48, steps=5, device="cuda")
    assert torch.cuda.memory_reserved() < 64 * 2**20
