"""The first output comes as soon as the classical start is known; the filters run side by side."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import napari_doubledip as dd
from napari_doubledip.core.guides import sure_blend
from napari_doubledip.core.parallel import run_in_threads

FAST = {"device": "cpu", "threads": 1}


@pytest.fixture(scope="module")
def noisy48():
    from skimage import data

    clean = data.camera()[200:248, 220:268] / 255.0
    return np.clip(clean + np.random.default_rng(1).normal(0, 0.1, clean.shape), 0, 1)


def test_a_guided_run_shows_its_start_before_the_first_step(noisy48):
    stop = threading.Event()
    snaps = []
    stream = dd.denoise_stream(noisy48, steps=5, seed=0, min_interval=0, stop=stop, **FAST)
    for snap in stream:
        snaps.append(snap)
        stop.set()  # Stop pressed as the first output appears
    first, final = snaps[0], snaps[-1]
    assert first.step == 0 and not first.done and dict(first.losses) == {}
    # what was shown is what Stop returns, and no step was needed for it
    assert final.done and final.step == 0
    np.testing.assert_array_equal(first.outputs["image"], final.outputs["image"])
    assert np.abs(first.outputs["image"] - noisy48).mean() > 0.02  # the denoised start, not the input


def test_the_start_snapshot_is_the_run_s_step_zero_output(noisy48):
    """The snapshot before the first step is the output a plain step-0 forward pass would give."""
    snaps = list(dd.denoise_stream(noisy48, steps=3, seed=0, min_interval=0, early_stop=False, **FAST))
    assert [s.step for s in snaps][:2] == [0, 1]
    task = dd.api.build_task("denoise", noisy48)
    from napari_doubledip.core.tasks.base import RunContext, make_generator

    dev = torch.device("cpu")
    torch.set_num_threads(1)
    task.setup(RunContext(device=dev, seed=0, generator=make_generator(dev, 0)))
    with torch.no_grad():
        forward = task.outputs({"image": task.forward()["image"]})["image"]
    np.testing.assert_allclose(snaps[0].outputs["image"], forward, atol=1e-6)


def test_tasks_without_a_known_start_begin_at_step_one(noisy48):
    snaps = list(dd.segment_stream(noisy48, steps=2, seed=0, min_interval=0, **FAST))
    assert snaps[0].step == 1


def test_run_in_threads_keeps_order_and_gaps():
    calls = [lambda: 1, None, lambda: 3]
    assert run_in_threads(calls) == [1, None, 3]
    assert run_in_threads([]) == []


def test_filters_run_side_by_side_with_two_threads():
    barrier = threading.Barrier(2, timeout=20)  # each call waits for the other: fails if run in turn

    def meet() -> int:
        return barrier.wait()

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert sorted(run_in_threads([meet, meet])) == [0, 1]
    finally:
        torch.set_num_threads(before)


def test_the_blend_does_not_depend_on_the_thread_count(noisy48):
    unit = noisy48[None].astype(np.float32)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one, w1 = sure_blend(unit, 0.1, seed=3)
        torch.set_num_threads(2)
        two, w2 = sure_blend(unit, 0.1, seed=3)
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(w1, w2)


def test_the_fill_refinements_do_not_depend_on_the_thread_count(noisy48):
    from napari_doubledip.core.guides import fill_candidates

    unit = noisy48[None].astype(np.float32)
    unseen = np.random.default_rng(2).random(noisy48.shape) < 0.5
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = fill_candidates(unit, unseen)
        torch.set_num_threads(2)
        two = fill_candidates(unit, unseen, needed=np.array([True, True, False, True]))
    finally:
        torch.set_num_threads(before)
    assert two[2] is None and len(two) == len(one) == 4
    for i in (0, 1, 3):
        np.testing.assert_array_equal(one[i], two[i])
