"""The napari dock widgets, driven like a user would: pick layers, click Run / Stop, watch the layers."""

from __future__ import annotations

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from qtpy.QtCore import Qt  # noqa: E402

PLUGIN = "napari-doubledip"
TIMEOUT_MS = 120_000


@pytest.fixture
def image32(photo48) -> np.ndarray:
    """A 32x32 RGB float image."""
    return np.ascontiguousarray(photo48[8:40, 8:40]).astype(np.float32)


def open_widget(viewer, name: str, steps: int = 5):
    """Dock a widget through napari's plugin machinery, set up for a tiny fast run."""
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
    widget.steps.value = steps
    widget.max_seconds.value = 0
    widget.min_interval.value = 0
    widget.early_stop.value = False
    widget.device.value = "cpu"
    return widget


class DataChanges:
    """Counts data changes of the output layers a run creates."""

    def __init__(self, viewer) -> None:
        self.counts: dict[str, int] = {}
        viewer.layers.events.inserted.connect(self._on_inserted)

    def _on_inserted(self, event) -> None:
        layer = event.value
        self.counts[layer.name] = 0
        layer.events.data.connect(lambda _e, name=layer.name: self._count(name))

    def _count(self, name: str) -> None:
        self.counts[name] += 1


def click_run_and_wait(qtbot, widget, timeout: int = TIMEOUT_MS):
    with qtbot.waitSignal(widget.run_finished, timeout=timeout) as blocker:
        qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
        assert widget.is_running, widget.status.text()
        assert not widget.run_button.isEnabled()
    assert not widget.is_running and widget.run_button.isEnabled()
    return blocker.args[0]


def test_denoise_widget_runs_updates_outputs_and_leaves_input_alone(viewer, qtbot, image32):
    source = viewer.add_image(image32.copy(), name="astronaut", scale=(2, 2), translate=(5, 7))
    widget = open_widget(viewer, "Denoise", steps=6)
    assert widget.input_picker.value == source
    changes = DataChanges(viewer)

    state = click_run_and_wait(qtbot, widget)

    out = viewer.layers["astronaut · denoised"]
    assert out.data.shape == image32.shape and out.rgb
    assert np.any(out.data != 0)
    assert changes.counts["astronaut · denoised"] >= 2  # updated live, not only at the end
    assert state.updates >= 2
    assert tuple(out.scale) == (2, 2) and tuple(out.translate) == (5, 7)
    info = out.metadata["doubledip"]
    assert info["task"] == "denoise" and info["steps_run"] == 6 and info["device"] == "cpu"
    assert "total" in info["final_losses"] and info["elapsed"] > 0
    np.testing.assert_array_equal(source.data, image32)
    assert "6 steps" in widget.status.text()
    assert widget.progress.value() == 1000


def test_stop_ends_the_run_within_a_snapshot_and_keeps_the_last_outputs(viewer, qtbot, image32):
    viewer.add_image(image32, name="img")
    widget = open_widget(viewer, "Denoise", steps=1_000_000)
    qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: widget.state.updates >= 2, timeout=TIMEOUT_MS)
    assert widget.stop_button.isEnabled()
    with qtbot.waitSignal(widget.run_finished, timeout=10_000):
        qtbot.mouseClick(widget.stop_button, Qt.MouseButton.LeftButton)
    info = viewer.layers["img · denoised"].metadata["doubledip"]
    assert info["stop_reason"] == "stopped" and info["steps_run"] < 1_000_000
    assert np.any(viewer.layers["img · denoised"].data != 0)
    assert widget.run_button.isEnabled() and not widget.stop_button.isEnabled()


def test_rerun_replaces_its_outputs_instead_of_piling_up(viewer, qtbot, image32):
    viewer.add_image(image32, name="img")
    widget = open_widget(viewer, "Denoise", steps=3)
    click_run_and_wait(qtbot, widget)
    first = viewer.layers["img · denoised"]
    n_layers = len(viewer.layers)
    widget.seed.value = 1
    click_run_and_wait(qtbot, widget)
    assert len(viewer.layers) == n_layers
    assert viewer.layers["img · denoised"] == first
    assert first.metadata["doubledip"]["seed"] == 1


def test_pickers_follow_added_renamed_and_removed_layers(viewer, qtbot, image32):
    widget = open_widget(viewer, "Inpaint")
    assert widget.input_picker.value is None
    image = viewer.add_image(image32, name="first")
    labels = viewer.add_labels(np.zeros((32, 32), np.uint8), name="holes")
    assert [layer.name for layer in widget.input_picker.choices] == ["first"]
    assert widget.input_picker.value == image
    assert [layer.name for layer in widget.hint_picker.choices] == ["holes"]
    second = viewer.add_image(image32, name="second")
    image.name = "renamed"  # renaming keeps the choice, and the viewer's order
    assert widget.input_picker.current_choice == "renamed"
    assert [layer.name for layer in widget.input_picker.choices] == ["renamed", "second"]
    assert widget.input_picker.value == image
    second.name = "second!"
    assert widget.input_picker.value == image
    viewer.layers.remove(labels)
    assert widget.hint_picker.choices == ()

    multi = open_widget(viewer, "Separate layers")
    assert [layer.name for layer in multi.input_picker.native.layers()] == ["renamed", "second!"]
    viewer.add_image(image32, name="third")
    assert [layer.name for layer in multi.input_picker.native.layers()] == ["renamed", "second!", "third"]
    assert [layer.name for layer in multi.inputs()] == ["renamed", "second!"]  # new ones start unticked
    multi.input_picker.native.list.setCurrentRow(1)
    qtbot.mouseClick(multi.input_picker.native.up, Qt.MouseButton.LeftButton)
    assert [layer.name for layer in multi.inputs()] == ["second!", "renamed"]
    assert multi.input_picker.value == multi.inputs()


def _assert_nothing_started(viewer, widget, names_before, expected: str):
    assert not widget.is_running
    assert expected in widget.status.text(), widget.status.text()
    assert [layer.name for layer in viewer.layers] == names_before


def test_bad_selections_say_what_to_change_and_start_nothing(viewer, qtbot, image32):
    denoise = open_widget(viewer, "Denoise")
    denoise.run_button.click()
    _assert_nothing_started(viewer, denoise, [], "Choose an image layer")

    image = viewer.add_image(image32.copy(), name="img")
    inpaint = open_widget(viewer, "Inpaint")
    inpaint.run_button.click()
    _assert_nothing_started(viewer, inpaint, ["img"], "Choose a mask layer")

    viewer.add_labels(np.ones((20, 20), np.uint8), name="small mask")
    inpaint.hint_picker.value = viewer.layers["small mask"]
    inpaint.run_button.click()
    _assert_nothing_started(viewer, inpaint, ["img", "small mask"], "must match")

    viewer.add_labels(np.zeros((32, 32), np.uint8), name="empty mask")
    inpaint.hint_picker.value = viewer.layers["empty mask"]
    inpaint.run_button.click()
    _assert_nothing_started(viewer, inpaint, ["img", "small mask", "empty mask"], "no pixel as missing")

    watermark = open_widget(viewer, "Remove watermark")
    watermark.input_picker.value = [image]
    watermark.hint_picker.value = None
    watermark.run_button.click()
    _assert_nothing_started(viewer, watermark, ["img", "small mask", "empty mask"], "hint")

    separate = open_widget(viewer, "Separate layers")
    separate.input_picker.value = []
    separate.run_button.click()
    _assert_nothing_started(viewer, separate, ["img", "small mask", "empty mask"], "Tick at least")
    np.testing.assert_array_equal(image.data, image32)


def test_inpaint_with_a_shapes_mask(viewer, qtbot, image32):
    damaged = image32.copy()
    damaged[10:20, 12:22] = 0
    viewer.add_image(damaged, name="damaged")
    viewer.add_shapes([np.array([[10, 12], [19.5, 21.5]])], shape_type="rectangle", name="hole")
    widget = open_widget(viewer, "Inpaint", steps=4)
    assert widget.hint_picker.value.name == "hole"
    click_run_and_wait(qtbot, widget)
    out = viewer.layers["damaged · inpainted"]
    assert out.data.shape == damaged.shape
    known = np.ones((32, 32), bool)
    known[10:21, 12:23] = False
    np.testing.assert_allclose(out.data[known], damaged[known], atol=1e-6)  # keep_known
    assert out.metadata["doubledip"]["task"] == "inpaint"


def test_segment_widget_with_hints(viewer, qtbot, image32):
    viewer.add_image(image32, name="scene")
    hints = np.zeros((32, 32), np.uint8)
    hints[12:18, 12:18] = 1
    hints[:3, :3] = 2
    viewer.add_labels(hints, name="hints")
    widget = open_widget(viewer, "Segment", steps=4)
    assert widget.hint_picker.value.name == "hints"
    assert widget.param_widgets["edge"].value == "auto"
    widget.param_widgets["edge"].value = "background"  # an object inside the frame
    click_run_and_wait(qtbot, widget)
    assert viewer.layers["scene · mask"].metadata["doubledip"]["edge"] == "background"
    assert viewer.layers["scene · foreground"].data.shape == image32.shape
    assert viewer.layers["scene · background (object removed)"].data.shape == image32.shape
    soft = viewer.layers["scene · soft mask"].data
    assert soft.shape == (32, 32) and soft.min() >= 0 and soft.max() <= 1
    labels = viewer.layers["scene · mask"]
    assert isinstance(labels, napari.layers.Labels) and labels.data.shape == (32, 32)
    assert "doubledip" in labels.metadata


def test_separate_widget_two_mixtures(viewer, qtbot, image32):
    other = image32[::-1].copy()
    viewer.add_image(0.7 * image32 + 0.3 * other, name="mix 1")
    viewer.add_image(0.3 * image32 + 0.7 * other, name="mix 2")
    widget = open_widget(viewer, "Separate layers", steps=4)
    assert [layer.name for layer in widget.inputs()] == ["mix 1", "mix 2"]
    click_run_and_wait(qtbot, widget)
    # its own outputs are not offered as its inputs; another task's widget offers them
    assert [layer.name for layer in widget.input_picker.native.layers()] == ["mix 1", "mix 2"]
    denoise = open_widget(viewer, "Denoise")
    assert "mix 1 · layer A" in [layer.name for layer in denoise.input_picker.choices]
    for name in ("mix 1 · layer A", "mix 1 · layer B"):
        assert viewer.layers[name].data.shape == image32.shape
        assert "doubledip" in viewer.layers[name].metadata
    assert "Mixing weights" in widget.status.text()


def test_watermark_widget_three_images(viewer, qtbot):
    from napari_doubledip import samples

    (a, b, c), _, _ = samples.watermarked_photos(size=32)
    viewer.add_image(a, name="a")
    viewer.add_image(b, name="b")
    viewer.add_image(c, name="c")
    widget = open_widget(viewer, "Remove watermark", steps=3)
    assert widget.param_widgets["mask_init"].value == 0  # from the data
    widget.param_widgets["mask_init"].value = 0.5  # a nearly opaque mark
    click_run_and_wait(qtbot, widget)
    assert viewer.layers["a · clean"].metadata["doubledip"]["mask_init"] == pytest.approx(0.5)
    assert viewer.layers["a · clean"].data.shape == a.shape
    assert viewer.layers["b · clean"].data.shape == b.shape
    assert viewer.layers["a · watermark mask"].data.ndim == 2
    # the mark as found: an RGBA layer, its colour with alpha = the mask (hidden until asked for)
    found = viewer.layers["a · watermark found"]
    assert found.rgb and found.data.shape == (32, 32, 4) and not found.visible
    np.testing.assert_array_equal(found.data[..., 3], viewer.layers["a · watermark mask"].data)
    np.testing.assert_array_equal(found.data[..., :3], 1.0)  # white, the default colour
    assert found.data[..., 3].max() > 0.4  # the shared logo was found
    assert viewer.layers["a · clean"].metadata["doubledip"]["task"] == "watermark"


def test_dehaze_widget(viewer, qtbot, image32):
    pytest.importorskip("napari_doubledip.core.tasks.dehaze")
    hazy = 0.6 * image32 + 0.4 * 0.9
    viewer.add_image(hazy, name="hazy")
    widget = open_widget(viewer, "Dehaze", steps=3)
    click_run_and_wait(qtbot, widget)
    assert viewer.layers["hazy · dehazed"].data.shape == hazy.shape
    assert viewer.layers["hazy · transmission"].data.shape == (32, 32)
    assert "Airlight" in widget.status.text()


def test_stack_current_frame_and_all_frames(viewer, qtbot, photo48):
    gray = photo48[8:40, 8:40].mean(axis=2).astype(np.float32)
    stack = np.stack([gray, gray[::-1], gray[:, ::-1]])
    source = viewer.add_image(stack.copy(), name="movie")
    widget = open_widget(viewer, "Denoise", steps=3)
    assert widget.all_frames.enabled
    viewer.dims.set_current_step(0, 2)
    click_run_and_wait(qtbot, widget)
    single = viewer.layers["movie · denoised"]
    assert single.data.shape == (32, 32)
    assert single.metadata["doubledip"]["steps_run"] == 3
    assert single.metadata["doubledip"]["frames"] == [[2]]

    source.scale = (4, 1, 1)
    widget.all_frames.value = True
    state = click_run_and_wait(qtbot, widget)
    out = viewer.layers["movie · denoised"]
    assert out.data.shape == stack.shape and tuple(out.scale) == (4, 1, 1)
    assert [layer.name for layer in viewer.layers] == ["movie", "movie · denoised"]
    assert all(np.any(out.data[t] != 0) for t in range(3))
    assert len(state.results) == 3 and len(out.metadata["doubledip"]["per_frame"]) == 3
    np.testing.assert_array_equal(source.data, stack)


def test_removing_an_output_layer_stops_the_run(viewer, qtbot, image32):
    viewer.add_image(image32, name="img")
    widget = open_widget(viewer, "Denoise", steps=1_000_000)
    widget.run_button.click()
    qtbot.waitUntil(lambda: widget.state.updates >= 1, timeout=TIMEOUT_MS)
    with qtbot.waitSignal(widget.run_finished, timeout=10_000):
        viewer.layers.remove("img · denoised")
    assert "img · denoised" not in [layer.name for layer in viewer.layers]


def test_demo_opens_sample_and_widget(make_napari_viewer_proxy, qtbot):
    from napari_doubledip._qt.demo import open_demo

    viewer = make_napari_viewer_proxy()
    _viewer, widget = open_demo("segment", run=False, viewer=viewer, steps=7, seed=3, device="cpu")
    assert widget.spec.name == "segment"
    assert (widget.steps.value, widget.seed.value, widget.device.value) == (7, 3, "cpu")
    assert widget.input_picker.value.name == "composite"
    assert widget.hint_picker.value.name.startswith("hints")
    assert not widget.is_running


def test_closing_the_widget_stops_its_run(viewer, qtbot, image32):
    viewer.add_image(image32, name="img")
    widget = open_widget(viewer, "Denoise", steps=1_000_000)
    widget.run_button.click()
    worker = widget.worker
    qtbot.waitUntil(lambda: widget.state.updates >= 1, timeout=TIMEOUT_MS)
    viewer.window.remove_dock_widget(widget)  # what napari's close button does
    qtbot.waitUntil(lambda: not worker.is_running, timeout=10_000)


def test_a_failing_run_reports_advice_and_cleans_up(viewer, qtbot, image32, monkeypatch):
    from napari_doubledip import api

    def failing_stream(image, **options):
        def gen():
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            yield  # pragma: no cover - makes this a generator

        return gen()

    monkeypatch.setattr(api, "denoise_stream", failing_stream)
    viewer.add_image(image32, name="img")
    widget = open_widget(viewer, "Denoise")
    click_run_and_wait(qtbot, widget, timeout=20_000)
    assert "smaller image" in widget.status.text() and "cpu" in widget.status.text()
    assert [layer.name for layer in viewer.layers] == ["img"]  # the empty output layer is gone
    assert widget.run_button.isEnabled()


@pytest.mark.parametrize("task", ["denoise", "inpaint", "segment", "separate", "watermark", "dehaze"])
def test_every_demo_runs_on_its_sample(make_napari_viewer_proxy, qtbot, task):
    """The samples load, the widget picks them up by itself, and a short run fills every output."""
    from napari_doubledip._qt.demo import open_demo

    if task == "dehaze":
        pytest.importorskip("napari_doubledip.core.tasks.dehaze")
    viewer = make_napari_viewer_proxy()
    _viewer, widget = open_demo(task, run=False, viewer=viewer, steps=2, device="cpu")
    widget.min_interval.value = 0
    inputs = [np.array(layer.data, copy=True) for layer in viewer.layers]
    state = click_run_and_wait(qtbot, widget)
    assert len(state.results) == 1, widget.status.text()
    assert all(target.updated for target in state.targets)
    assert all("doubledip" in target.layer.metadata for target in state.targets)
    for before, layer in zip(inputs, viewer.layers):
        np.testing.assert_array_equal(layer.data, before)


def test_cancel_from_the_activity_dock_ends_the_run_as_stop_does(viewer, qtbot, image32):
    """The Activity dock (napari's task status) cancels a worker with ``worker.quit()``."""
    viewer.add_image(image32, name="img")
    widget = open_widget(viewer, "Denoise", steps=1_000_000)
    widget.run_button.click()
    qtbot.waitUntil(lambda: widget.state.updates >= 1, timeout=TIMEOUT_MS)
    with qtbot.waitSignal(widget.run_finished, timeout=10_000) as blocker:
        widget.worker.quit()
    state = blocker.args[0]
    assert len(state.results) == 1  # the result came back, as with Stop
    info = viewer.layers["img · denoised"].metadata["doubledip"]
    assert info["stop_reason"] == "stopped" and info["steps_run"] < 1_000_000
    assert "Done on cpu" in widget.status.text()
    assert widget.run_button.isEnabled() and not widget.stop_button.isEnabled()


def test_closing_the_viewer_mid_run_ends_the_worker_thread(make_napari_viewer_proxy, qtbot, image32):
    viewer = make_napari_viewer_proxy(show=True)
    viewer.add_image(image32, name="img")
    widget = open_widget(viewer, "Denoise", steps=1_000_000)
    widget.run_button.click()
    worker = widget.worker
    qtbot.waitUntil(lambda: widget.state.updates >= 1, timeout=TIMEOUT_MS)
    viewer.close()
    qtbot.waitUntil(lambda: not worker.is_running, timeout=10_000)


def test_a_closed_widget_no_longer_follows_the_viewer(viewer, qtbot, image32):
    first = viewer.add_image(image32, name="first")
    widget = open_widget(viewer, "Inpaint")
    refreshes = []
    widget.form.refresh = lambda: refreshes.append(1)
    viewer.add_image(image32, name="second")
    assert refreshes  # docked: it follows the layers
    inserted = len(viewer.layers.events.inserted.callbacks)
    renamed = len(first.events.name.callbacks)
    viewer.window.remove_dock_widget(widget)
    refreshes.clear()
    viewer.add_image(image32, name="third")
    first.name = "first again"
    viewer.layers.remove("second")
    assert refreshes == []
    assert len(viewer.layers.events.inserted.callbacks) < inserted
    assert len(first.events.name.callbacks) < renamed


def test_run_returns_before_creating_the_output_layers(viewer, qtbot, image32):
    """Creating napari layers is slow: Run hands them to the event loop, one per turn."""
    viewer.add_image(image32, name="scene")
    hints = np.zeros((32, 32), np.uint8)
    hints[12:18, 12:18], hints[:3, :3] = 1, 2
    viewer.add_labels(hints, name="hints")
    widget = open_widget(viewer, "Segment", steps=3)
    with qtbot.waitSignal(widget.run_finished, timeout=TIMEOUT_MS):
        assert widget.run()
        assert [layer.name for layer in viewer.layers] == ["scene", "hints"]
    names = [layer.name for layer in viewer.layers]
    assert {
        "scene · foreground",
        "scene · background (object removed)",
        "scene · mask",
        "scene · soft mask",
    } <= set(names)
    assert all(target.updated and "doubledip" in target.layer.metadata for target in widget.state.targets)


def test_snapshots_faster_than_the_update_interval_are_coalesced(viewer, qtbot, image32, monkeypatch):
    """The layers take at most one snapshot per update interval (the latest), and the last one at the end."""
    from types import MappingProxyType

    from napari_doubledip import api
    from napari_doubledip.core.loop import Snapshot
    from napari_doubledip.core.tasks.base import Result

    n = 8

    def stream(image, **options):
        def gen():
            for step in range(1, n + 1):
                out = np.full(image.shape, step, np.float32)
                out.flags.writeable = False
                losses = MappingProxyType({"total": 1.0 / step})
                yield Snapshot(
                    step, n, 0.01 * step, None, losses, MappingProxyType({"image": out}), step == n
                )
            return Result(history={}, params={"steps_run": n, "stop_reason": "steps"})

        return gen()

    monkeypatch.setattr(api, "denoise_stream", stream)
    viewer.add_image(image32, name="img")
    widget = open_widget(viewer, "Denoise")
    widget.min_interval.value = 60  # a round of layer updates a minute at most
    changes = DataChanges(viewer)
    state = click_run_and_wait(qtbot, widget)
    out = viewer.layers["img · denoised"]
    assert state.updates == n and len(widget.loss_plot.values) == n
    assert changes.counts["img · denoised"] <= 3  # created with a snapshot, one round, the last one
    assert np.all(out.data == n) and out.data.flags.writeable  # the worker's private copy
    assert all(not target.stale and target.updated for target in state.targets)


def test_a_long_run_says_in_the_status_line_what_to_expect(viewer, qtbot, image32, monkeypatch):
    from napari_doubledip.core import snapshot

    monkeypatch.setattr(snapshot, "EXPECTATION_SECONDS", 0.0)  # every run counts as long here
    viewer.add_image(image32, name="img")
    widget = open_widget(viewer, "Denoise", steps=1_000_000)
    qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Expect about" in widget.status.text(), timeout=TIMEOUT_MS)
    assert "GPU" in widget.status.text() and widget.status.text().count("Expect about") == 1
    assert "region in view" in widget.status.text()  # the widget's own way to a smaller region
    with qtbot.waitSignal(widget.run_finished, timeout=10_000):
        qtbot.mouseClick(widget.stop_button, Qt.MouseButton.LeftButton)
