"""Cross-validated weights of the inpainting fill candidates (core/fill_folds.py)."""

from __future__ import annotations

import numpy as np
import pytest

import napari_doubledip as dd
from napari_doubledip.core import fill_folds
from napari_doubledip.core.guides import biharmonic_guide

from .conftest import psnr

FAST = {"device": "cpu", "threads": 1}


def test_out_of_fold_fills_never_see_the_pixel_they_predict():
    rng = np.random.default_rng(0)
    unit = rng.random((1, 32, 32)).astype(np.float32)
    missing = rng.random((32, 32)) < 0.5
    design, target, group = fill_folds.out_of_fold_fills(unit, missing, seed=0)
    changed = unit.copy()
    first = np.flatnonzero(~missing.ravel())[0]  # the first known pixel: row 0 of the design
    changed.reshape(-1)[first] = 1.0 - unit.reshape(-1)[first]
    design2, target2, _ = fill_folds.out_of_fold_fills(changed, missing, seed=0)
    assert target2[0] != target[0]
    assert np.array_equal(design2[0], design[0])  # its own predictions did not move
    assert group.shape == (int((~missing).sum()),) and set(group) == set(range(fill_folds.FILL_FOLDS))


def test_folds_keep_biharmonic_when_the_candidates_add_nothing(monkeypatch):
    from scipy import ndimage

    rng = np.random.default_rng(1)
    # a smooth image with a little noise: biharmonic filling is near the best a fill can do
    smooth = ndimage.gaussian_filter(rng.random((48, 48)), 6)
    smooth = 0.2 + 0.6 * (smooth - smooth.min()) / np.ptp(smooth)
    unit = (smooth + rng.normal(0, 0.01, smooth.shape))[None].astype(np.float32)
    missing = rng.random((48, 48)) < 0.5

    def candidates(image, unseen, needed=None, budget=None):  # "refinements" that are biharmonic plus noise
        base = biharmonic_guide(image, unseen)
        noisy = [base + rng.normal(0, 0.1, base.shape).astype(np.float32) for _ in range(3)]
        return [base, *[c if needed is None or needed[i + 1] else None for i, c in enumerate(noisy)]]

    def polyharmonic(image, unseen, needed, biharmonic):  # likewise for the polyharmonic fills
        return [biharmonic + rng.normal(0, 0.1, biharmonic.shape).astype(np.float32) for _ in needed]

    monkeypatch.setattr(fill_folds, "fill_candidates", candidates)
    monkeypatch.setattr(fill_folds, "polyharmonic_candidates", polyharmonic)
    weights, score = fill_folds.cross_validated_fill_weights(unit, missing, seed=0)
    assert weights.tolist() == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert score > -fill_folds.FOLD_CONFIDENCE_Z


def test_folds_confirm_the_refined_fill_the_held_out_pixels_were_too_few_to_confirm():
    from skimage import data
    from skimage.restoration import inpaint_biharmonic

    clean = data.coffee()[150:214, 250:314] / 255.0
    missing = np.random.default_rng(0).random(clean.shape[:2]) < 0.8
    damaged = np.where(missing[..., None], 0.0, clean)
    biharmonic = np.clip(inpaint_biharmonic(damaged, missing, channel_axis=-1), 0, 1)
    result = dd.inpaint(damaged, missing, steps=1, seed=0, **FAST)
    # the run's 5% held-out pixels did not confirm the blend: the folds were asked, and did
    assert result.params["fill_fold_score"] < -fill_folds.FOLD_CONFIDENCE_Z
    assert result.params["fill_weights"][0] < 1.0
    assert psnr(result.image, clean) > psnr(biharmonic, clean) + 0.3


@pytest.mark.parametrize("shape", [(300, 40), (300, 300)])
def test_large_images_are_judged_on_bounded_tiles(shape):
    windows = fill_folds._windows(shape, seed=0)
    area = sum((wy.stop - wy.start) * (wx.stop - wx.start) for wy, wx in windows)
    if min(shape) < fill_folds.FOLD_TILE:
        assert windows == [(slice(0, shape[0]), slice(0, shape[1]))]
    else:
        assert len(windows) == fill_folds.FOLD_TILES
        assert area == fill_folds.FOLD_TILES * fill_folds.FOLD_TILE**2


def test_where_only_the_folds_confirm_the_blend_an_output_better_than_biharmonic_competes_by_its_error():
    import torch
    from skimage import data

    from napari_doubledip.core.tasks.base import RunContext, make_generator
    from napari_doubledip.core.tasks.inpaint import InpaintTask

    device = torch.device("cpu")
    clean = data.coffee()[150:214, 250:314] / 255.0

    def set_up(fraction: float, **kwargs) -> InpaintTask:
        missing = np.random.default_rng(0).random(clean.shape[:2]) < fraction
        task = InpaintTask(np.where(missing[..., None], 0.0, clean), missing, **kwargs)
        task.setup(RunContext(device=device, seed=0, generator=make_generator(device, 0)))
        return task

    task = set_up(0.5)  # 5% held out: too few to confirm the blend; the folds confirm it
    assert task.fill_fold_score is not None and task.fill_weights[0] < 1.0
    assert task._peer_held_errors is not None
    # an output that predicts the held-out pixels well: confirmed better than biharmonic
    # filling; it scores its own held-out error, not the upper bound against the guide
    out = {"image": task.guide + 0.9 * (task.image.tensor - task.guide)}
    relaxed = float(task.validation_loss(out))
    task._peer_held_errors = None
    strict = float(task.validation_loss(out))
    assert relaxed < strict
    assert relaxed == pytest.approx(
        float(task._held_out_errors(task._cross_fitted(out)).mean()) / 3, rel=1e-5
    )
    # where the held-out pixels confirmed the blend themselves, or the guide is biharmonic
    # filling, the output must beat the guide
    confirmed = set_up(0.5, holdout=0.1)
    assert confirmed.fill_fold_score is None and confirmed.fill_weights[0] < 1.0
    assert confirmed._peer_held_errors is None
    assert set_up(0.8, guide="biharmonic")._peer_held_errors is None
