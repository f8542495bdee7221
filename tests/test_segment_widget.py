"""The Segment dock widget: a rectangle as a box, live re-hinting, its mask fed back as hints."""

from __future__ import annotations

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_doubledip.samples import segmentation_composite  # noqa: E402

from .test_segment_hints import _two_reds  # noqa: E402

# the dock-widget helpers of the widget tests: a widget set up for a tiny run, Run and wait
from .test_widgets import TIMEOUT_MS, click_run_and_wait, open_widget  # noqa: E402


def test_rectangle_in_a_shapes_layer_is_a_box(viewer, qtbot):
    image, truth, _ = segmentation_composite(48, seed=0, foreground="chelsea", background="brick")
    viewer.add_image(image, name="scene")
    ys, xs = np.nonzero(truth)
    y0, x0, y1, x1 = (
        int(ys.min()) - 2,
        max(0, int(xs.min()) - 2),
        int(ys.max()) + 2,
        min(47, int(xs.max()) + 2),
    )
    shapes = viewer.add_shapes([[[y0, x0], [y0, x1], [y1, x1], [y1, x0]]], shape_type="rectangle", name="box")
    widget = open_widget(viewer, "Segment", steps=2)
    widget.hint_picker.value = shapes
    click_run_and_wait(qtbot, widget)
    mask = viewer.layers["scene · mask"]
    info = mask.metadata["doubledip"]
    assert info["prior"] == "box" and info["box"] == [y0, x0, y1 + 1, x1 + 1]  # corners' pixels included
    outside = np.ones(truth.shape, bool)
    outside[y0 : y1 + 1, x0 : x1 + 1] = False
    assert np.all(mask.data[outside] == 2)  # background keeps the hints' label
    fg = mask.data == 1
    assert (fg & truth).sum() / (fg | truth).sum() > 0.9
    assert "scene · background (object removed)" in viewer.layers
    # a Shapes layer without a rectangle says what to draw
    viewer.layers.remove(shapes)
    lines = viewer.add_shapes([[[2, 2], [20, 20]]], shape_type="line", name="line")
    widget.hint_picker.value = lines
    assert not widget.run()
    assert "no rectangle" in widget.status.text()


def test_background_stroke_painted_mid_run_removes_the_area(viewer, qtbot):
    """Live re-hinting: a stroke painted during the run is taken at once, the run goes on."""
    image, hints, wrong = _two_reds()
    viewer.add_image(image, name="scene")
    layer = viewer.add_labels(hints.copy(), name="hints")
    widget = open_widget(viewer, "Segment", steps=100_000)
    seen: dict[str, list] = {"before": [], "after": [], "steps": []}
    painted = {"done": False}

    def on_snapshot(item):
        _position, snap = item
        fg = snap.outputs["labels"] == 1
        seen["steps"].append(snap.step)
        seen["after" if painted["done"] else "before"].append(float(fg[wrong].mean()))
        if not painted["done"] and snap.step >= 5:
            layer.brush_size = 3
            for x in range(22, 27):  # a short background stroke, as the brush paints it
                layer.paint((6, x), 2)
            painted["done"] = True
        if seen["after"] and seen["after"][-1] < 0.5 and len(seen["after"]) > 2:
            widget.stop()

    with qtbot.waitSignal(widget.run_finished, timeout=TIMEOUT_MS) as blocker:
        assert widget.run(), widget.status.text()
        widget.worker.yielded.connect(on_snapshot)
    state = blocker.args[0]
    assert painted["done"] and min(seen["before"]) > 0.9, seen["before"]
    assert seen["after"][-1] < 0.5, seen["after"]  # the area left the mask, beyond the stroke
    assert seen["steps"] == sorted(seen["steps"]) and len(state.results) == 1  # no restart
    info = viewer.layers["scene · mask"].metadata["doubledip"]
    assert info["n_background_hints"] == int((layer.data == 2).sum()) > int((hints == 2).sum())
    # after the run, painting no longer sends copies
    live = state.plan.live
    while not live.empty():
        live.get_nowait()
    layer.paint((20, 20), 2)
    qtbot.wait(50)
    assert live.empty()


def test_mask_output_can_be_painted_and_fed_back(viewer, qtbot):
    image, hints, _ = _two_reds()
    viewer.add_image(image, name="scene")
    viewer.add_labels(hints, name="hints")
    widget = open_widget(viewer, "Segment", steps=2)
    click_run_and_wait(qtbot, widget)
    mask = viewer.layers["scene · mask"]
    assert set(np.unique(mask.data)) == {1, 2}
    mask.data = np.where(np.arange(32)[None, :] < 3, 2, mask.data).astype(mask.data.dtype)
    widget.hint_picker.value = mask
    click_run_and_wait(qtbot, widget)
    assert np.all(viewer.layers["scene · mask"].data[:, :3] == 2)
