"""Guided reconstruction: the classical estimate, held-out pixels, patch steps, exact known pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import napari_doubledip as dd
from napari_doubledip.core import loop
from napari_doubledip.core.clipping import clipped_ends, declip, estimate_noise_sigma_unclipped
from napari_doubledip.core.guides import (
    estimate_noise_sigma,
    fill_from_neighbours,
    holdout_mask,
    nlm_guide,
    sure_blend,
)
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


def test_sure_blend_beats_each_of_its_members_and_skimage_nlm(noisy64):
    noisy, clean = noisy64
    unit = np.moveaxis(noisy, -1, 0).astype(np.float32)
    truth = np.moveaxis(clean, -1, 0)
    blend, weights = sure_blend(unit, 0.1, seed=0)
    assert blend.shape == unit.shape and blend.dtype == np.float32 and len(weights) == 7
    members = [nlm_guide(unit, 0.1, 0.5), nlm_guide(unit, 0.1), nlm_guide(unit, 0.1, 0.6, 7, 9)]
    best_member = max(psnr(m, truth) for m in members)
    assert psnr(blend, truth) > best_member + 0.1  # the weights were fitted without the clean image
    again, same = sure_blend(unit, 0.1, seed=0, weights=weights)  # given weights: no fit
    np.testing.assert_array_equal(again, blend)
    np.testing.assert_array_equal(same, weights)
    # no noise: the image itself
    identity, w0 = sure_blend(unit, 0.0)
    np.testing.assert_allclose(identity, np.clip(unit, 0, 1))
    assert w0.tolist() == [0, 0, 0, 0, 0, 0, 1]


def test_sure_blend_fits_large_images_on_tiles():
    from skimage import data

    clean = data.camera()[:384, :384] / 255.0  # over SURE_FIT_PIXELS: weights from random tiles
    noisy = clean + np.random.default_rng(2).normal(0, 0.08, clean.shape)
    blend, _ = sure_blend(noisy[None].astype(np.float32), 0.08, seed=0)
    assert psnr(blend[0], clean) > psnr(nlm_guide(noisy[None].astype(np.float32), 0.08)[0], clean) + 0.1


def test_declip_reads_clean_values_back_from_means_of_clipped_noise():
    rng = np.random.default_rng(0)
    truth = np.array([0.0, 0.02, 0.1, 0.5, 0.9, 0.97, 1.0])
    noisy = np.clip(truth[:, None] + rng.normal(0, 0.1, (7, 200_000)), 0, 1)
    means = noisy.mean(axis=1)  # what a perfect denoiser of the clipped image estimates
    assert means[0] > 0.035 and means[-1] < 0.965  # 0.4 sigma of bias at the ends
    np.testing.assert_allclose(declip(means, 0.1, True, True), truth, atol=0.004)
    np.testing.assert_array_equal(declip(means, 0.1, False, False), means)  # nothing clipped
    assert clipped_ends(noisy[None]) == (True, True)
    assert clipped_ends(np.linspace(0, 1, 10_000)[None, None]) == (False, False)


def test_the_noise_estimate_sees_through_clipping():
    from skimage import data

    clean = data.astronaut()[192:320, 192:320] / 255.0  # 18% of its noisy values saturate
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 25 / 255, clean.shape), 0, 1)
    unit = np.moveaxis(noisy, -1, 0).astype(np.float32)
    assert estimate_noise_sigma(unit) * 255 < 23.5  # scikit-image's estimate, fooled by clipping
    assert 24 < estimate_noise_sigma_unclipped(unit) * 255 < 27


def test_denoising_undoes_the_clipping_bias():
    from skimage import data

    clean = data.astronaut()[200:264, 200:264] / 255.0  # much of its noise clipped at black and white
    noisy = np.clip(clean + np.random.default_rng(3).normal(0, 25 / 255, clean.shape), 0, 1)
    plain = dd.denoise(noisy, steps=1, seed=0, declip=False, **FAST)
    fixed = dd.denoise(noisy, steps=1, seed=0, **FAST)
    assert plain.params["declipped"] == [] and fixed.params["declipped"] == ["low"]
    assert psnr(fixed.image, clean) > psnr(plain.image, clean) + 0.2
    raw = clean + np.random.default_rng(3).normal(0, 25 / 255, clean.shape)  # noise never clipped
    unclipped = dd.denoise(raw, steps=1, seed=0, **FAST)
    assert unclipped.params["declipped"] == []


def test_guided_denoising_is_never_worse_than_its_guide(noisy64):
    noisy, clean = noisy64
    result = dd.denoise(noisy, steps=60, seed=0, declip=False, **FAST)
    sigma = result.params["noise_sigma_unit"]
    unit = np.moveaxis(noisy, -1, 0).astype(np.float32)
    guide = np.moveaxis(sure_blend(unit, sigma, weights=np.array(result.params["blend_weights"]))[0], 0, -1)
    nlm = np.moveaxis(nlm_guide(unit, sigma), 0, -1)
    assert result.params["guide_used"] == "sure"
    assert psnr(result.image, clean) >= psnr(guide, clean) - 0.05
    assert psnr(result.image, clean) > psnr(nlm, clean) + 0.2
    old = dd.denoise(noisy, steps=5, seed=0, guide="nlm", **FAST)
    assert old.params["guide_used"] == "nlm" and "blend_weights" not in old.params
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


def test_inpainting_refines_biharmonic_filling_where_held_out_pixels_confirm_it():
    from skimage import data
    from skimage.restoration import inpaint_biharmonic

    clean = data.astronaut()[150:214, 250:314] / 255.0
    missing = np.random.default_rng(0).random(clean.shape[:2]) < 0.5
    damaged = np.where(missing[..., None], 0.0, clean)
    biharmonic = np.clip(inpaint_biharmonic(damaged, missing, channel_axis=-1), 0, 1)
    # a quarter of the known pixels held out: enough for a 64^2 image to confirm the blend
    refined = dd.inpaint(damaged, missing, steps=1, seed=0, holdout=0.25, **FAST)
    weights = refined.params["fill_weights"]
    assert len(weights) == 6 and weights != [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert psnr(refined.image, clean) > psnr(biharmonic, clean) + 0.3
    plain = dd.inpaint(damaged, missing, steps=1, seed=0, holdout=0.25, guide="biharmonic", **FAST)
    assert psnr(plain.image, clean) == pytest.approx(psnr(biharmonic, clean), abs=0.3)
    assert "fill_weights" not in plain.params


def test_an_output_the_held_out_pixels_do_not_confirm_returns_the_guide_exactly():
    from skimage import data
    from skimage.restoration import inpaint_biharmonic

    clean = data.moon()[200:248, 200:248] / 255.0  # film grain: no fill predicts it
    missing = np.random.default_rng(0).random(clean.shape) < 0.5
    damaged = np.where(missing, 0.0, clean)
    biharmonic = np.clip(inpaint_biharmonic(damaged, missing), 0, 1)
    # three steps from a random generator: nothing on the held-out pixels can confirm it (before,
    # a share of its departure fitted on those pixels was added: up to 0.002 off here)
    result = dd.inpaint(damaged, missing, steps=3, seed=0, guide="biharmonic", **FAST)
    assert result.params["best_step"] == 0
    np.testing.assert_allclose(result.image, biharmonic, atol=1e-5)


def test_fill_weights_keep_biharmonic_when_the_candidates_add_nothing():
    from napari_doubledip.core.guides import fit_fill_weights

    rng = np.random.default_rng(0)
    unit = rng.random((1, 32, 32)).astype(np.float32)
    held = rng.random((32, 32)) < 0.2
    noise = [unit + rng.normal(0, 0.2, unit.shape).astype(np.float32) for _ in range(3)]
    weights = fit_fill_weights([unit * 0.9 + 0.05, *noise], unit, held, seed=0)
    assert weights.tolist() == [1.0, 0.0, 0.0, 0.0]


def test_sure_blend_has_no_overall_gain_on_a_bright_flat_patch():
    """Weights fitted away from clipping on a bright flat patch once scaled it down by 6%."""
    rng = np.random.default_rng(3)
    clean = np.full((1, 64, 64), 0.82, np.float32)
    noisy = np.round(np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1) * 255) / 255
    sigma = estimate_noise_sigma_unclipped(noisy.astype(np.float32))
    blend, weights = sure_blend(noisy.astype(np.float32), sigma, seed=0)
    assert abs(weights.sum() - 1.0) < 1e-3
    assert abs(float(blend.mean()) - 0.82) < 0.01


def test_sure_blend_keeps_non_local_means_where_nearly_everything_is_clipped():
    from napari_doubledip.core.guides import SURE_NLM_MEMBERS, SURE_PEER_MEMBER

    rng = np.random.default_rng(4)
    clean = np.zeros((1, 64, 64), np.float32)
    clean[:, :, 32:] = 1.0  # black and white: the noise is clipped nearly everywhere
    noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1).astype(np.float32)
    sigma = estimate_noise_sigma_unclipped(noisy)
    blend, weights = sure_blend(noisy, sigma, seed=0)
    assert weights[SURE_PEER_MEMBER] == 1.0 and weights.sum() == 1.0
    h, p, d = SURE_NLM_MEMBERS[SURE_PEER_MEMBER]
    np.testing.assert_array_equal(blend, np.clip(nlm_guide(noisy, sigma, h, p, d), 0, 1))


def test_the_fill_weights_test_counts_pixels_not_colour_channels():
    from napari_doubledip.core.guides import fit_fill_weights

    # three identical channels carry no more evidence than one: the same decisions as on gray
    # (counting each channel as a sample, the test confirmed 6 of these 12 borderline blends on
    # RGB that it rejected on gray)
    for seed in range(12):
        rng = np.random.default_rng(seed)
        gray = rng.random((1, 32, 32)).astype(np.float32)
        held = rng.random((32, 32)) < 0.2
        error = rng.normal(0, 0.1, gray.shape).astype(np.float32)
        candidates = [gray + error, gray + 0.9 * error + rng.normal(0, 0.03, gray.shape).astype(np.float32)]
        on_gray = fit_fill_weights([*candidates, None, None], gray, held, seed=0)
        rgb = [np.repeat(c, 3, axis=0) for c in candidates]
        on_rgb = fit_fill_weights([*rgb, None, None], np.repeat(gray, 3, axis=0), held, seed=0)
        assert np.allclose(on_gray, on_rgb, atol=1e-5), seed
