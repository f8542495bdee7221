"""The optimisation loop and the DIP tasks, through the public API (tiny images, CPU)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import napari_doubledip as dd
from napari_doubledip.core.guides import estimate_noise_sigma
from napari_doubledip.core.loop import Snapshot, WindowedVariance

from .conftest import psnr

FAST = {"device": "cpu", "threads": 1}


def test_short_denoise_raises_psnr(photo48, rng):
    noisy = np.clip(photo48 + rng.normal(0, 0.1, photo48.shape), 0, 1)
    result = dd.denoise(noisy, steps=250, seed=0, early_stop=False, **FAST)
    assert result.image.shape == noisy.shape and result.image.dtype == noisy.dtype
    gain = psnr(result.image, photo48) - psnr(noisy, photo48)
    assert gain > 2.0, f"denoising gained only {gain:.2f} dB"
    assert result.params["steps_run"] == 250 and result.params["seed"] == 0
    assert result.params["device"] == "cpu"
    assert len(result.history["total"]) == 250 and result.history["step"][-1] == 250


def test_same_seed_same_result_other_seed_differs(photo48):
    a = dd.denoise(photo48, steps=5, seed=3, **FAST).image
    b = dd.denoise(photo48, steps=5, seed=3, **FAST).image
    c = dd.denoise(photo48, steps=5, seed=4, **FAST).image
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_inpaint_loss_ignores_missing_pixels(photo48, rng):
    mask = rng.random(photo48.shape[:2]) < 0.5
    garbage = photo48.copy()
    garbage[mask] = rng.random((int(mask.sum()), 3))  # different values under the mask
    a = dd.inpaint(photo48, mask, steps=6, seed=1, **FAST)
    b = dd.inpaint(garbage, mask, steps=6, seed=1, **FAST)
    np.testing.assert_allclose(a.history["total"], b.history["total"], rtol=1e-6)
    # known pixels are returned as given; missing ones come from the generator
    np.testing.assert_allclose(a.image[~mask], photo48[~mask], atol=1e-6)
    np.testing.assert_allclose(a.image[mask], b.image[mask], atol=1e-6)


def test_inpaint_fills_missing_pixels_better_than_zeros(photo48, rng):
    mask = rng.random(photo48.shape[:2]) < 0.5
    damaged = np.where(mask[..., None], 0.0, photo48)
    result = dd.inpaint(damaged, mask, steps=150, seed=0, **FAST)
    assert psnr(result.image, photo48) > psnr(damaged, photo48) + 8


def test_stop_request_ends_run_within_one_step(photo48):
    stop = threading.Event()
    stream = dd.denoise_stream(photo48, steps=10_000, min_interval=0, stop=stop, **FAST)
    first = next(stream)
    stop.set()
    snaps = list(stream)
    assert len(snaps) == 1 and snaps[0].done and snaps[0].reason == "stopped"
    assert snaps[0].step == first.step  # no further step ran


def test_callback_false_stops_blocking_run(photo48):
    seen: list[Snapshot] = []

    def callback(snap: Snapshot) -> bool:
        seen.append(snap)
        return snap.step < 3

    result = dd.denoise(photo48, steps=10_000, min_interval=0, callback=callback, **FAST)
    assert result.params["stop_reason"] == "stopped" and result.params["steps_run"] == 3
    assert seen[-1].done


def test_snapshots_are_immutable_bounded_and_end_with_a_final_one(photo48):
    stream = dd.denoise_stream(photo48, steps=40, min_interval=0, snapshot_every=10, **FAST)
    snaps = []
    while True:
        try:
            snaps.append(next(stream))
        except StopIteration as end:
            result = end.value
            break
    # step 0: the guided net's start (the classical estimate), shown before the first step
    assert [s.step for s in snaps] == [0, 10, 20, 30, 40, 40]
    assert [s.done for s in snaps] == [False] * 5 + [True]
    assert snaps[-1].reason == "steps" and snaps[-1].progress == 1.0
    with pytest.raises(ValueError):
        snaps[0].outputs["image"][0, 0] = 1
    with pytest.raises(TypeError):
        snaps[0].outputs["new"] = 1
    np.testing.assert_array_equal(result.image, snaps[-1].outputs["image"])


def test_min_interval_bounds_the_snapshot_rate(photo48):
    stream = dd.denoise_stream(
        photo48, steps=10_000, max_seconds=3.0, min_interval=0.5, early_stop=False, **FAST
    )
    t0 = time.perf_counter()
    snaps = list(stream)
    elapsed = time.perf_counter() - t0
    assert snaps[-1].reason == "time" and snaps[-1].step > 10
    assert len(snaps) - 1 <= elapsed / 0.5 + 1


def test_discrepancy_rule_stops_denoising_early(photo48, rng):
    noisy = np.clip(photo48 + rng.normal(0, 0.12, photo48.shape), 0, 1)
    result = dd.denoise(noisy, steps=3000, seed=0, **FAST)
    assert result.params["stop_reason"] == "early-stop"
    assert result.params["steps_run"] < 3000
    assert psnr(result.image, photo48) > psnr(noisy, photo48) + 2


def test_noise_sigma_estimate_is_close(rng):
    clean = np.tile(np.linspace(0, 1, 64), (64, 1))[None]
    noisy = clean + rng.normal(0, 0.05, clean.shape)
    assert abs(estimate_noise_sigma(noisy) - 0.05) < 0.005


def test_windowed_variance_stops_after_patience():
    import torch

    wmv = WindowedVariance(window=3, stride=1, patience=5)
    frames = [torch.full((4,), float(v)) for v in [0, 1, 1.1, 1.15, 1.17] + [0, 5] * 10]
    stops = [wmv.update(i + 1, f)[1] for i, f in enumerate(frames)]
    assert any(stops) and stops.index(True) == wmv.best_step + 5 - 1


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, bool])
def test_dtypes_and_odd_sizes_round_trip_through_a_task(dtype, rng):
    image = rng.random((19, 37, 3)) * (255 if dtype == np.uint8 else 4000 if dtype == np.uint16 else 1)
    image = image > 0.5 if dtype is bool else image.astype(dtype)
    out = dd.denoise(image, steps=2, **FAST).image
    assert out.shape == image.shape and out.dtype == image.dtype
    if dtype is not bool:
        assert out.min() >= image.min() and out.max() <= image.max()


def test_gray_and_rgba_through_a_task(rng):
    gray = rng.random((20, 24)).astype(np.float32)
    assert dd.denoise(gray, steps=2, **FAST).image.shape == (20, 24)
    rgba = rng.integers(0, 256, (24, 20, 4)).astype(np.uint8)
    out = dd.denoise(rgba, steps=2, **FAST).image
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])


def test_user_arrays_are_not_modified(photo48, rng):
    image = photo48.copy()
    mask = rng.random(image.shape[:2]) < 0.3
    mask_copy = mask.copy()
    dd.inpaint(image, mask, steps=3, **FAST)
    np.testing.assert_array_equal(image, photo48)
    np.testing.assert_array_equal(mask, mask_copy)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda im: dd.inpaint(im, np.zeros((10, 10), bool)), "mask has shape"),
        (lambda im: dd.inpaint(im, np.zeros(im.shape[:2], bool)), "no pixel as missing"),
        (lambda im: dd.inpaint(im, np.ones(im.shape[:2], bool)), "every pixel as missing"),
        (lambda im: dd.denoise(im[:8]), "too small"),
        (lambda im: dd.denoise(im, steps=0), "steps must be >= 1"),
        (lambda im: dd.denoise(im, max_seconds=-1), "max_seconds must be > 0"),
        (lambda im: dd.denoise(im, net="huge"), "unknown network preset"),
        (lambda im: dd.denoise(im, device="cuda:7" if False else "nonsense"), "unknown device"),
        (lambda im: dd.denoise(im, lr=-1), "lr must be > 0"),
        (lambda im: dd.denoise(im, precision="half"), "precision must be"),
    ],
)
def test_bad_inputs_raise_clear_errors(photo48, call, message):
    with pytest.raises(ValueError, match=message):
        call(photo48)


def test_cuda_request_without_cuda_is_a_clear_error(photo48):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="CUDA is not available"):
        dd.denoise(photo48, steps=1, device="cuda")


def test_import_does_not_load_torch():
    import subprocess
    import sys

    code = "import sys, napari_doubledip; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
