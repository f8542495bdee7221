"""A run keeps its time budget and obeys Stop during its set-up: optional work is left out."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

import napari_doubledip as dd
from napari_doubledip.core import budget as budget_module
from napari_doubledip.core import guides
from napari_doubledip.core.budget import TimeBudget


@pytest.fixture
def photo40():
    from skimage import data

    return data.astronaut()[100:140, 180:220] / 255.0


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _stopped() -> TimeBudget:
    event = threading.Event()
    event.set()
    return TimeBudget(stop=event)


def test_budget_reports_stop_and_deadline():
    assert TimeBudget().allows(1e9) and TimeBudget().seconds_left() == float("inf")
    assert not _stopped().allows(0.0)
    past = TimeBudget(deadline=time.perf_counter() - 1)
    assert not past.allows(0.0) and past.seconds_left() < 0
    assert TimeBudget(deadline=time.perf_counter() + 100).allows(10.0)
    assert not TimeBudget(deadline=time.perf_counter() + 100).allows(1000.0)


@pytest.mark.parametrize("cut", [_stopped, lambda: TimeBudget(deadline=time.perf_counter() - 1)])
def test_fill_refinements_are_left_out_when_stopped_or_out_of_time(photo40, cut):
    unit = np.moveaxis(photo40, -1, 0).astype(np.float32)
    unseen = np.random.default_rng(0).random(unit.shape[1:]) < 0.5
    candidates = guides.fill_candidates(unit, unseen, budget=cut())
    assert candidates[1:] == [None, None, None]
    np.testing.assert_array_equal(candidates[0], guides.biharmonic_guide(unit, unseen))
    # without a budget, or with time enough, every refinement is made
    full = guides.fill_candidates(unit, unseen, budget=TimeBudget(deadline=time.perf_counter() + 600))
    assert all(c is not None for c in full)


@pytest.mark.parametrize(
    ("deadline", "again", "made"), [(12, True, 1), (8, True, 0), (8, False, 1), (80, True, 3)]
)
def test_a_refinement_starts_only_if_its_passes_fit_before_the_deadline(
    monkeypatch, one_thread, deadline, again, made
):
    """Refinements start only where their passes (by the time taken so far) fit before the deadline.

    Each non-local-means pass takes one second of a fake clock; the refinements (5, 10 and 20
    passes) run one after the other on one thread, and with ``again`` must leave time to be made
    once more.
    """
    clock = [0.0]
    fake_time = type("T", (), {"perf_counter": staticmethod(lambda: clock[0])})

    def one_second_pass(x, *args, **kwargs):
        clock[0] += 1.0
        return x.copy()

    monkeypatch.setattr(guides, "time", fake_time)
    monkeypatch.setattr(budget_module, "time", fake_time)
    monkeypatch.setattr(guides, "nlm_guide", one_second_pass)
    unit = np.random.default_rng(0).random((1, 16, 16)).astype(np.float32)
    unseen = np.random.default_rng(1).random((16, 16)) < 0.5
    candidates = guides.fill_candidates(unit, unseen, budget=TimeBudget(deadline=deadline), again=again)
    assert [c is not None for c in candidates] == [True] + [i < made for i in range(3)]


def test_fill_weights_leave_out_what_was_not_made():
    rng = np.random.default_rng(0)
    unit = rng.random((1, 32, 32)).astype(np.float32)
    held = rng.random((32, 32)) < 0.3
    better = unit * 0.9 + 0.05
    candidates = [unit * 0 + 0.5, better, None, better * 0.5 + 0.25]
    weights = guides.fit_fill_weights(candidates, unit, held, seed=0)
    assert weights.shape == (4,) and weights[2] == 0 and not (weights[0] == 1 and not weights[1:].any())
    assert np.isfinite(guides.blend_fills(candidates, weights)).all()


def test_stop_during_inpainting_set_up_returns_biharmonic_filling_at_once(photo40):
    from skimage.restoration import inpaint_biharmonic

    mask = np.random.default_rng(0).random(photo40.shape[:2]) < 0.5
    stop = threading.Event()
    stop.set()  # pressed before the set-up's refinements start
    result = dd.inpaint(photo40, mask, steps=50, seed=0, stop=stop)
    assert result.params["steps_run"] == 0 and result.params["stop_reason"] == "stopped"
    assert "setup_cut" in result.params and result.params["fill_weights"] == [1.0] + [0.0] * 5
    peer = np.clip(inpaint_biharmonic(photo40, mask, channel_axis=-1), 0, 1)
    np.testing.assert_allclose(result.image[mask], peer[mask], atol=1e-6)
    np.testing.assert_array_equal(result.image[~mask], photo40[~mask])  # known pixels as given


def test_a_run_with_time_enough_records_no_cut(photo40):
    mask = np.random.default_rng(0).random(photo40.shape[:2]) < 0.5
    result = dd.inpaint(photo40, mask, steps=2, seed=0)
    assert "setup_cut" not in result.params


def test_stop_during_denoising_set_up_returns_the_non_local_means_member(one_thread):
    from skimage import data

    clean = data.camera()[200:240, 220:260] / 255.0
    noisy = np.clip(clean + np.random.default_rng(1).normal(0, 0.1, clean.shape), 0, 1).astype(np.float32)
    unit = noisy[None]
    image, weights = guides.sure_blend(unit, 0.1, seed=0, budget=_stopped())
    assert weights[guides.SURE_PEER_MEMBER] == 1.0 and weights.sum() == 1.0
    h, p, d = guides.SURE_NLM_MEMBERS[guides.SURE_PEER_MEMBER]
    np.testing.assert_array_equal(image, np.clip(guides.nlm_guide(unit, 0.1, h, p, d), 0, 1))
    # the returned image's blend, from weights fitted before Stop, falls back alike
    full, fitted = guides.sure_blend(unit, 0.1, seed=0)
    assert fitted[guides.SURE_PEER_MEMBER] != 1.0
    again, kept = guides.sure_blend(unit, 0.1, seed=0, weights=fitted, budget=_stopped())
    np.testing.assert_array_equal(again, image)
    assert kept[guides.SURE_PEER_MEMBER] == 1.0


def test_a_step_that_would_end_past_the_budget_is_not_started(photo40, monkeypatch):
    from napari_doubledip.core.tasks.denoise import DenoiseTask

    forward = DenoiseTask.forward

    def slow_forward(self):
        time.sleep(1.0)
        return forward(self)

    monkeypatch.setattr(DenoiseTask, "forward", slow_forward)
    result = dd.denoise(
        photo40, max_seconds=2.5, seed=0, early_stop=False, guide="nlm", device="cpu", threads=1
    )
    # steps of a second each: without the check the third would start near 2.1 s and end near 3.1 s
    assert 1 <= result.params["steps_run"] <= 2
    assert result.params["seconds"] < 2.5
