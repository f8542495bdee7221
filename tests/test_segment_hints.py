"""Segmentation: the unsupervised start, the box, labels fed back as hints, hints changed mid-run, the CLI's --box."""

from __future__ import annotations

import json
import queue

import numpy as np
import pytest

import napari_doubledip as dd
from napari_doubledip import cli, registry
from napari_doubledip._io import read_image, write_image
from napari_doubledip.core.priors.segmentation import (
    box_prior,
    check_box,
    pixel_features,
    two_means,
    unsupervised_prior,
)
from napari_doubledip.registry._common import parse_box
from napari_doubledip.samples import segmentation_composite

FAST = {"device": "cpu", "threads": 1, "seed": 0}


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


@pytest.fixture(scope="module")
def cat_on_bricks():
    """Chelsea through the horse on a brick wall, 48², its true mask and the box around it."""
    image, truth, hints = segmentation_composite(48, seed=0, foreground="chelsea", background="brick")
    ys, xs = np.nonzero(truth)
    box = (int(ys.min()) - 2, max(0, int(xs.min()) - 2), int(ys.max()) + 3, min(48, int(xs.max()) + 3))
    return image, truth, hints, box


def test_unsupervised_start_beats_the_two_means_split_it_refines(cat_on_bricks):
    image, truth, _, _ = cat_on_bricks
    unit = np.moveaxis(image, -1, 0)
    split = two_means(pixel_features(unit)).reshape(truth.shape) == 1
    oracle = max(_iou(split, truth), _iou(~split, truth))  # the split, with the better side
    ours = _iou(unsupervised_prior(unit) > 0.5, truth)  # its own choice of side
    assert ours > oracle + 0.05, (ours, oracle)  # measured 0.97 vs 0.81
    r = dd.segment(image, steps=2, **FAST)  # the mask starts there
    assert r.params["prior"] == "split" and r.params["mask_offset"] is True
    assert _iou(r.foreground_mask, truth) > 0.9


def test_box_outside_is_background_and_the_object_inside_is_found(cat_on_bricks):
    image, truth, _, box = cat_on_bricks
    y0, x0, y1, x1 = box
    assert _iou(box_prior(np.moveaxis(image, -1, 0), box) > 0.5, truth) > 0.9  # measured 0.98
    r = dd.segment(image, box=box, steps=2, **FAST)
    outside = np.ones(truth.shape, bool)
    outside[y0:y1, x0:x1] = False
    assert np.all(r.labels[outside] == 2)
    assert _iou(r.foreground_mask, truth) > 0.9
    assert r.params["prior"] == "box" and r.params["box"] == list(box)
    assert r.params["hinted"] is False
    # strokes inside the box make it a walk (from the strokes and the box's outside)
    hints = np.zeros(truth.shape, np.uint8)
    hints[truth & (np.arange(48)[:, None] > 30)] = 1
    assert dd.segment(image, hints, box=box, steps=1, **FAST).params["prior"] == "walk"


@pytest.mark.parametrize(
    ("box", "match"),
    [
        ((0, 0, 48, 48), "whole"),
        ((5, 5, 6, 30), "less than 2 x 2"),
        ((60, 60, 70, 70), "less than 2 x 2"),
        ((1, 2, 3), "four numbers"),
        ("1,2,3,4", "four numbers"),
    ],
)
def test_bad_boxes_raise(cat_on_bricks, box, match):
    with pytest.raises(ValueError, match=match):
        dd.segment(cat_on_bricks[0], box=box, steps=1, **FAST)


def test_check_box_orders_and_clips():
    assert check_box((30.4, 20, 2.5, -3), (40, 40)) == (2, 0, 31, 20)
    assert parse_box("1, 2,30,40") == [1.0, 2.0, 30.0, 40.0]
    with pytest.raises(ValueError, match="Y0,X0,Y1,X1"):
        parse_box("1,2,3")


def test_labels_output_fed_back_as_hints(cat_on_bricks):
    """The mask's labels are the hints' values: paint on them, pass them back."""
    image, truth, hints, _ = cat_on_bricks
    first = dd.segment(image, hints, steps=2, **FAST)
    assert set(np.unique(first.labels)) == {1, 2}
    edited = first.labels.copy()
    edited[:6, :6] = 1  # the user paints a corner foreground
    again = dd.segment(image, edited, steps=2, **FAST)
    assert np.all(again.labels[:6, :6] == 1)
    assert again.params["n_foreground_hints"] == int((edited == 1).sum())


def _two_reds(n: int = 32):
    """Red foreground (left), a slightly other red (top right), gray (bottom right), and strokes."""
    rng = np.random.default_rng(0)
    image = np.empty((n, n, 3), np.float32)
    image[:] = 0.5
    image[:, : n // 2] = (0.85, 0.2, 0.2)
    image[: n // 2, n // 2 :] = (0.75, 0.3, 0.2)
    image = np.clip(image + rng.normal(0, 0.03, image.shape), 0, 1).astype(np.float32)
    hints = np.zeros((n, n), np.uint8)
    hints[n // 2 - 2 : n // 2 + 2, 4:8] = 1
    hints[n - 6 : n - 2, n - 6 : n - 2] = 2
    wrong = np.zeros((n, n), bool)
    wrong[: n // 2, n // 2 :] = True  # foreground by the first strokes, background in truth
    return image, hints, wrong


def test_hints_changed_mid_run_are_taken_without_restarting():
    image, hints, wrong = _two_reds()
    updates: queue.Queue = queue.Queue()
    stream = dd.segment_stream(
        image, hints, steps=40, min_interval=0, snapshot_every=5, hint_updates=updates, **FAST
    )
    steps, before, after = [], [], []
    for snap in stream:
        steps.append(snap.step)
        fg = snap.outputs["labels"] == 1
        (after if snap.step > 10 else before).append(float(fg[wrong].mean()))
        if snap.step == 10:
            new = hints.copy()
            new[5:9, 22:26] = 2  # a background stroke in the wrong area
            updates.put(new)
    assert steps == sorted(steps) and steps[-1] == 40  # one run, going on
    assert min(before) > 0.9, before
    assert after[-1] < 0.5, after  # the area left the mask, not only the painted pixels
    painted = np.zeros(wrong.shape, bool)
    painted[5:9, 22:26] = True
    assert (snap.outputs["labels"][wrong & ~painted] == 2).mean() > 0.5


def test_invalid_hint_update_is_ignored_with_a_warning():
    image, hints, _ = _two_reds()
    updates: queue.Queue = queue.Queue()
    updates.put(np.full(hints.shape, 7, np.uint8))
    with pytest.warns(UserWarning, match="hint update ignored"):
        r = dd.segment(image, hints, steps=3, hint_updates=updates, **FAST)
    assert r.params["n_foreground_hints"] == int((hints == 1).sum())
    updates.put(np.where(hints == 1, 0, hints).astype(np.uint8))  # no foreground: edge rule refuses
    with pytest.warns(UserWarning, match="hint update ignored"):
        r = dd.segment(image, hints, steps=3, edge="background", hint_updates=updates, **FAST)
    assert r.params["n_foreground_hints"] == int((hints == 1).sum()) and r.params["edge"] == "background"
    with pytest.raises(TypeError, match="queue"):
        dd.segment(image, hints, steps=1, hint_updates=[hints], **FAST)


def test_background_output_is_the_object_removed():
    entry = registry.get("segment")
    suffixes = {o.key: o.suffix for o in entry.outputs}
    assert suffixes["background"] == "background (object removed)"
    assert entry.aux is not None and entry.aux.box == "box" and "shapes" in entry.aux.layer_types


def test_cli_box(tmp_path, cat_on_bricks):
    image, truth, _, box = cat_on_bricks
    write_image(tmp_path / "scene.png", (image * 255).round().astype(np.uint8))
    out = tmp_path / "out"
    flags = ["--steps", "2", "--seed", "1", "--device", "cpu", "--quiet", "--out", str(out)]
    text = ",".join(str(v) for v in box)
    assert cli.main(["segment", str(tmp_path / "scene.png"), "--box", text, *flags]) == 0
    side = json.loads((out / "scene_segment.json").read_text())
    assert side["run_params"]["box"] == list(box) and side["run_params"]["prior"] == "box"
    mask, _ = read_image(out / "scene_segment_mask.png")
    y0, x0, y1, x1 = box
    outside = np.ones(truth.shape, bool)
    outside[y0:y1, x0:x1] = False
    assert np.all(mask[outside] == 0) and _iou(mask == 255, truth) > 0.9  # 255 = label 1 only
    with pytest.raises(SystemExit):
        cli.main(["segment", str(tmp_path / "scene.png"), "--box", "1,2,3", *flags])
