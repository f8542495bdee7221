"""The run's mask judged against its start without ground truth (GrabCut's energy, region by region)."""

from __future__ import annotations

import numpy as np

import napari_doubledip as dd
from napari_doubledip.core.priors.judge import MaskJudge
from napari_doubledip.samples import segmentation_composite

FAST = {"device": "cpu", "threads": 1, "seed": 0}


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def _square(size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """A red square on a blue ground, with a little noise."""
    truth = np.zeros((size, size), bool)
    truth[8:24, 8:24] = True
    rng = np.random.default_rng(0)
    unit = np.where(truth, 1.0, 0.0)[None] * np.array([0.9, 0.2, 0.1])[:, None, None]
    unit = unit + np.where(truth, 0.0, 1.0)[None] * np.array([0.1, 0.2, 0.9])[:, None, None]
    return np.clip(unit + rng.normal(0, 0.03, unit.shape), 0, 1), truth


def test_a_change_that_raises_the_energy_is_refused():
    unit, truth = _square()
    run = truth.copy()
    run[0:6, 0:6] = True  # a patch of the blue ground called foreground
    chosen, choice = MaskJudge(unit, truth).choose(run)
    assert np.array_equal(chosen, truth)
    assert choice.source == "start" and choice.regions == 1 and choice.pixels_changed == 36
    assert choice.energy_run > choice.energy_start == choice.energy_returned


def test_regions_are_judged_one_by_one():
    """The run fixes one region of a wrong start and breaks another: only the fix is taken."""
    unit, truth = _square()
    start = truth.copy()
    start[8:14, 8:14] = False  # the start missed a corner of the square
    run = truth.copy()
    run[26:30, 26:30] = True  # the run found the corner, but added a patch of ground
    chosen, choice = MaskJudge(unit, start).choose(run)
    assert np.array_equal(chosen, truth)
    assert choice.source == "mixed" and (choice.regions, choice.regions_from_run) == (2, 1)
    assert choice.pixels_from_run == 36 and choice.energy_returned < choice.energy_start
    # the same fix alone: the whole run is taken
    chosen, choice = MaskJudge(unit, start).choose(truth)
    assert np.array_equal(chosen, truth) and choice.source == "run"


def test_a_run_that_would_worsen_the_mask_returns_the_start():
    """A run far from its start after a few steps comes back as the start, and says so.

    A mask net started from noise (``mask_offset=False``) is far from the prior after 3 steps
    (measured: IoU 0.53 against the start's 0.98); judged, all 456 changed pixels are refused.
    """
    image, truth, hints = segmentation_composite(48, 0, foreground="chelsea", background="brick")
    raw = dd.segment(image, hints, steps=3, mask_offset=False, judge=False, **FAST)
    judged = dd.segment(image, hints, steps=3, mask_offset=False, **FAST)
    start = dd.segment(image, hints, steps=1, **FAST)  # the mask net's correction starts small
    choice = judged.params["mask_choice"]
    assert start.params["mask_choice"]["pixels_changed"] <= 2  # 1 step barely moves the start
    assert choice["pixels_changed"] > 100 and choice["pixels_from_run"] < 0.05 * choice["pixels_changed"]
    raw_iou, judged_iou = _iou(raw.foreground_mask, truth), _iou(judged.foreground_mask, truth)
    start_iou = _iou(start.foreground_mask, truth)
    assert raw_iou < start_iou - 0.2, (raw_iou, start_iou)  # the run alone would have worsened it
    assert judged_iou >= start_iou - 0.01, (judged_iou, start_iou)
    assert "Mask:" in judged.summary() and judged.record()["mask_choice"] == choice
    assert raw.params["mask_choice"] is None and raw.summary() == ""


def test_mean_boundary_weight_is_low_along_image_edges():
    from napari_doubledip.core.priors.graphcut import mean_boundary_weight

    unit, truth = _square()
    grown = truth.copy()
    grown[8:24, 24:30] = True  # the outline now crosses the flat blue ground on one side
    assert mean_boundary_weight(unit, truth) < 0.3 * mean_boundary_weight(unit, grown)
    assert mean_boundary_weight(unit, np.zeros_like(truth)) == 1.0


def test_unsupervised_start_prefers_the_tighter_split_only_inside_the_frame_object(monkeypatch):
    """Without hints, the split's cut replaces the frame's object only when tighter and inside it.

    The frame's object took in a patch of flat ground: the split's cut, inside it and along
    the image's edges, replaces it; a split elsewhere, or larger, does not.
    """
    from napari_doubledip.core.priors import segmentation

    unit, truth = _square()
    grown = truth.copy()
    grown[8:24, 24:30] = True
    elsewhere = np.zeros_like(truth)
    elsewhere[2:6, 2:30] = True

    def run(frame: np.ndarray, split: np.ndarray) -> np.ndarray:
        monkeypatch.setattr(segmentation, "box_prior", lambda *a, **k: frame.astype(np.float64))
        monkeypatch.setattr(segmentation, "split_prior", lambda *a, **k: split.astype(np.float64))
        return segmentation.unsupervised_prior(unit) > 0.5

    assert np.array_equal(run(grown, truth), truth)  # the tighter object along the edges
    assert np.array_equal(run(truth, grown), truth)  # the split is larger: the frame's object stays
    assert np.array_equal(run(grown, elsewhere), grown)  # another region: the frame's object stays
    assert np.array_equal(run(np.zeros_like(truth), truth), truth)  # nothing in the frame: the split
