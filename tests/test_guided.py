"""Guided reconstruction: the classical estimate, held-out pixels, patch steps, exact known pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import napari_doubledip as dd
from napari_doubledip.core import loop
from napari_doubledip.core.guides import fill_from_neighbours, holdout_mask, nlm_guide
from napari_doubledip.core.tasks.base import RunContext, make_generator
from napari_doubledip.core.tasks.denoise import DenoiseTask

from .conftest import psnr

FAST = {"device": "cpu", "threads": 1}
#: a three-level default net: patches of 16 px fit it, so a 64 px image has 16 of them
SMALL_NET = {
    "preset": "default",
    "channels_down": (16,) * 3,
    "channels_up": (16,) * 3,
    "channels_skip": (4,) * 3,
}


@pytest.fixture(scope="module")
def noisy64():
    from skimage import data

    clean = data.astronaut()[100:164, 180:244] / 255.0
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 0.1, clean.shape), 0, 1)
    return noisy, clean


def _ctx(seed: int = 0) -> RunContext:
    dev = torch.device("cpu")
    return RunContext(device=dev, seed=seed, generator=make_generator(dev, seed))


def test_the_guide_never_sees_held_out_values(noisy64):
    noisy, _ = noisy64
    unit = np.moveaxis(noisy, -1, 0).astype(np.float32)
    held = holdout_mask(unit.shape[1:], 0.05, seed=0)
    changed = unit.copy()
    changed[:, held] = 1.0 - changed[:, held]  # other values at the held-out pixels only
    a = nlm_guide(fill_from_neighbours(unit, held, noise_sigma=0.1, seed=0), 0.1)
    b = nlm_guide(fill_from_neighbours(changed, held, noise_sigma=0.1, seed=0), 0.1)
    np.testing.assert_array_equal(a, b)
    assert 0.03 < held.mean() < 0.07 and holdout_mask(held.shape, 0.05, seed=0).tolist() == held.tolist()


def test_nlm_guide_keeps_a_single_channel():
    gray = np.random.default_rng(0).random((1, 32, 40), dtype=np.float32)
    assert nlm_guide(gray, 0.1).shape == (1, 32, 40)


def test_guided_denoising_is_never_worse_than_its_guide(noisy64):
    noisy, clean = noisy64
    result = dd.denoise(noisy, steps=60, seed=0, **FAST)
    sigma = result.params["noise_sigma_unit"]
    guide = np.moveaxis(nlm_guide(np.moveaxis(noisy, -1, 0).astype(np.float32), sigma), 0, -1)
    assert result.params["guide_used"] == "nlm"
    assert psnr(result.image, clean) >= psnr(guide, clean) - 0.05
    assert psnr(result.image, clean) > psnr(noisy, clean) + 5
    assert result.params["best_step"] is not None and result.params["held_out_mse"] > 0


def test_live_snapshots_show_what_stop_returns(noisy64):
    noisy, _ = noisy64
    stream = dd.denoise_stream(noisy, steps=30, seed=0, min_interval=0, early_stop=False, **FAST)
    snaps = list(stream)
    # with held-out pixels each snapshot is the best so far, so the last two agree
    np.testing.assert_array_equal(snaps[-2].outputs["image"], snaps[-1].outputs["image"])


def test_large_images_train_on_patches_with_full_frame_outputs(noisy64):
    noisy, clean = noisy64
    task = DenoiseTask(noisy, patch=16, net=SMALL_NET)
    task.setup(_ctx())
    assert task.patch_size == (16, 16) and task.full_frame_every >= 1
    out = task.forward()
    assert out["patch"].shape[-2:] == (16, 16) and out["image"].shape[-2:] == task.image.padded_shape
    assert task.ema_keys() == ("image",)
    whole = DenoiseTask(noisy, patch=0, net=SMALL_NET)
    whole.setup(_ctx())
    assert whole.patch_size is None and "patch" not in whole.forward()
    # a plain DIP (no guide as input) never trains on patches: it could not converge
    plain = DenoiseTask(noisy, patch=16, guide="none", net=SMALL_NET)
    plain.setup(_ctx())
    assert plain.patch_size is None
    result = dd.denoise(noisy, steps=40, seed=0, patch=16, net=SMALL_NET, **FAST)
    assert result.image.shape == noisy.shape and psnr(result.image, clean) > psnr(noisy, clean) + 5
    with pytest.raises(ValueError, match="patch"):
        dd.denoise(noisy, patch=-1)


def test_same_seed_same_result_with_patches(noisy64):
    noisy, _ = noisy64
    a = dd.denoise(noisy, steps=12, seed=3, patch=16, net=SMALL_NET, **FAST).image
    b = dd.denoise(noisy, steps=12, seed=3, patch=16, net=SMALL_NET, **FAST).image
    np.testing.assert_array_equal(a, b)


def test_inpainting_returns_known_pixels_exactly():
    rng = np.random.default_rng(1)
    image = rng.random((40, 40, 3)) * 1e-3 + 0.3  # float64 values a float32 round trip would change
    mask = rng.random((40, 40)) < 0.3
    result = dd.inpaint(image, mask, steps=3, **FAST)
    assert result.image.dtype == image.dtype
    np.testing.assert_array_equal(result.image[~mask], image[~mask])
    gray = dd.inpaint(image[..., 0], mask, steps=3, **FAST).image
    np.testing.assert_array_equal(gray[~mask], image[..., 0][~mask])


def test_a_non_finite_loss_stops_with_the_last_finite_snapshot(noisy64, monkeypatch):
    noisy, _ = noisy64
    real_loss = DenoiseTask.loss

    def loss(self, out, step):
        total, terms = real_loss(self, out, step)
        return (total * float("nan"), terms) if step >= 4 else (total, terms)

    monkeypatch.setattr(DenoiseTask, "loss", loss)
    stream = dd.denoise_stream(noisy, steps=20, min_interval=0, **FAST)
    seen = []
    with pytest.raises(loop.NonFiniteLossError, match="NaN or infinite") as caught:
        seen.extend(stream)
    assert seen and caught.value.snapshot is seen[-1]
    assert np.isfinite(caught.value.snapshot.outputs["image"]).all()


@pytest.mark.parametrize("task", ["denoise", "segment"])
def test_a_run_stopped_before_its_first_step_still_returns_outputs(noisy64, task):
    import threading

    noisy, _ = noisy64
    stop = threading.Event()
    stop.set()
    fn = dd.denoise if task == "denoise" else dd.segment
    result = fn(noisy, steps=5, stop=stop, **FAST)
    assert result.params["steps_run"] == 0 and result.params["stop_reason"] == "stopped"
    image = result.image if task == "denoise" else result.mask
    assert image.shape[:2] == noisy.shape[:2] and np.isfinite(image).all()
