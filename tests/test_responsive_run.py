"""Run in the widget: cheap checks on the GUI thread, the task built on the worker (issue 13)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import napari_doubledip as dd
from napari_doubledip import api, registry
from napari_doubledip.core.tasks.watermark import WatermarkTask


def _watermarked(photo48: np.ndarray) -> list[np.ndarray]:
    """Three photos sharing a light bar."""
    rng = np.random.default_rng(0)
    images = []
    for k in range(3):
        image = np.roll(photo48, 7 * k, axis=1).astype(np.float32)
        image = np.clip(image + 0.01 * rng.standard_normal(image.shape), 0, 1).astype(np.float32)
        image[20:26, 8:40] = 0.6 * 1.0 + 0.4 * image[20:26, 8:40]
        images.append(image)
    return images


def _bad_requests(photo48: np.ndarray) -> list[tuple[str, tuple, dict]]:
    image = photo48.astype(np.float32)
    nan = image.copy()
    nan[3, 4, 1] = np.nan
    hints = np.zeros((48, 48), np.uint8)
    hints[10:14, 10:14] = 1
    return [
        ("denoise", (image[:10],), {}),
        ("denoise", (nan,), {}),
        ("denoise", (image.astype(complex),), {}),
        ("denoise", (image,), {"guide": "median"}),
        ("inpaint", (image, np.zeros((48, 48), bool)), {}),
        ("inpaint", (image, np.ones((48, 48), bool)), {}),
        ("inpaint", (image, np.ones((40, 48), bool)), {}),
        ("segment", (image, np.full((48, 48), 1, np.uint8)), {}),
        ("segment", (image, np.full((48, 48), 3, np.uint8)), {}),
        ("segment", (image, hints), {"prior": "walk", "edge": "free"}),
        ("segment", (image,), {"box": (0, 0, 48, 48)}),
        ("separate", ([image, image[:40]],), {}),
        ("separate", ([image, image],), {"initial_alphas": [0.2, 1.5]}),
        ("watermark", ([image],), {}),
        ("watermark", ([image, image[:, :, 0]],), {}),
        ("watermark", ([image, image[:8, :8]],), {}),
        ("watermark", ([image], np.zeros((48, 48))), {}),
        ("watermark", ([image], np.ones((30, 30))), {}),
        ("dehaze", (nan,), {}),
    ]


def test_the_cheap_checks_refuse_what_building_the_task_refuses_with_its_message(photo48):
    for task, inputs, options in _bad_requests(photo48):
        with pytest.raises((ValueError, TypeError)) as built:
            api.build_task(task, *inputs, **options)
        with pytest.raises(type(built.value)) as checked:
            api.check_request(task, *inputs, device="cpu", **options)
        assert str(checked.value) == str(built.value), task


def test_the_cheap_checks_accept_every_sample_and_convert_nothing(monkeypatch):
    from napari_doubledip.core import conversion

    def no_conversion(*args, **kwargs):
        raise AssertionError("check_request converted an image")

    monkeypatch.setattr(conversion, "to_unit", no_conversion)
    monkeypatch.setattr(conversion, "to_unit_jointly", no_conversion)
    for entry in registry.entries():
        layers = entry.sample.layers(32)
        images = [np.asarray(d) for d, _meta, kind in layers if kind == "image"]
        hints = [np.asarray(d) for d, _meta, kind in layers if kind != "image"]
        inputs: list = [images if entry.inputs.group else images[0]]
        if entry.aux is not None and entry.aux.kind != "value":
            inputs.append(hints[0] if hints else None)
        api.check_request(entry, *inputs, device="cpu")


def test_the_watermark_task_estimates_the_support_in_setup_not_in_its_constructor(photo48):
    images = _watermarked(photo48)
    task = WatermarkTask(images)
    assert task._support is None  # the constructor (cheap) left it to setup
    result = dd.remove_watermark(images, steps=2, seed=0, device="cpu", early_stop=False)
    assert result.params["start_opacity"] != 0.1  # the opacity came from the support's fill
    assert task.support is not None and task.support[22, 20]  # estimated on first use: the bar


def test_present_sets_layers_within_its_time_budget_at_least_one():
    """Small layers share one event-loop turn (one repaint); a spent budget leaves the rest for the next."""
    from types import SimpleNamespace

    from napari_doubledip._qt.output_layers import OutputLayers
    from napari_doubledip._qt.run_model import OutputTarget

    def staged(n, hidden=()):
        targets = [
            OutputTarget(
                spec=None, key=f"k{i}", layer=SimpleNamespace(data=None, visible=i not in hidden), source=None
            )
            for i in range(n)
        ]
        for i, target in enumerate(targets):
            target.latest, target.stale = np.full((2, 2), i), True
        return SimpleNamespace(targets=targets)

    state = staged(3)
    assert not OutputLayers.present(state, budget=10.0)  # all three in one turn
    assert all(t.updated and not t.stale and t.layer.data is t.latest for t in state.targets)
    state = staged(3)
    assert OutputLayers.present(state, budget=0.0)  # the budget is spent after the first
    assert [t.updated for t in state.targets] == [True, False, False]
    assert OutputLayers.present(state, budget=0.0) and not OutputLayers.present(state, budget=0.0)
    assert all(t.updated for t in state.targets)


def test_present_leaves_hidden_layers_for_later_while_a_run_goes_on():
    """A hidden layer keeps its staged data during the run's rounds; it gets it when shown, or at the end."""
    from types import SimpleNamespace

    from napari_doubledip._qt.output_layers import OutputLayers
    from napari_doubledip._qt.run_model import OutputTarget

    targets = [
        OutputTarget(spec=None, key=f"k{i}", layer=SimpleNamespace(data=None, visible=i == 0), source=None)
        for i in range(3)
    ]
    for i, target in enumerate(targets):
        target.latest, target.stale = np.full((2, 2), i), True
    state = SimpleNamespace(targets=targets)
    assert not OutputLayers.present(state, budget=10.0)  # a round: nothing visible left
    assert [t.updated for t in targets] == [True, False, False]
    assert targets[1].layer.data is None and targets[1].stale
    targets[1].layer.visible = True  # shown by the user: the next round sets it
    assert not OutputLayers.present(state, budget=10.0)
    assert targets[1].layer.data is targets[1].latest and targets[2].layer.data is None
    assert not OutputLayers.present(state)  # the run has ended: every layer gets its data
    assert targets[2].layer.data is targets[2].latest and not any(t.stale for t in targets)


def test_opening_a_form_imports_no_torch():
    """The form reads the entries' steps, options and nets without importing the engine (torch, 1-3 s)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from napari_doubledip import registry\n"
        "from napari_doubledip._qt import task_form, task_widget, widgets\n"
        "from napari_doubledip.core import preload\n"
        "for e in registry.entries():\n"
        "    e.default_steps, e.shown_options, e.default_net\n"
        "assert task_form.device_choices(preload.devices_if_loaded()) == [('auto', 'auto'), ('cpu', 'cpu')]\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_torch_libraries_loaded_ahead_leave_torch_working():
    """The C++ libraries mapped before ``import torch`` (GIL released) are the ones torch then uses."""
    import subprocess
    import sys

    import torch

    from napari_doubledip.core import preload

    assert torch is not None and preload.load_torch_libraries() == 0  # torch imported: nothing to do
    code = (
        "import sys\n"
        "from napari_doubledip.core import preload\n"
        "n = preload.load_torch_libraries()\n"
        "assert 'torch' not in sys.modules and n >= 2, n\n"
        "import torch\n"
        "x = torch.arange(6.0).reshape(2, 3)\n"
        "assert float((x @ x.T).sum()) == 83.0\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_registry_steps_are_the_engine_classes_default_steps():
    for entry in registry.entries():
        assert entry.steps == entry.task_class.default_steps, entry.name


napari = pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from .test_widgets import click_run_and_wait, open_widget  # noqa: E402


def test_the_device_choice_is_filled_in_once_torch_is_imported(viewer, qtbot, photo48, monkeypatch):
    """The dock opens with 'auto' and 'cpu'; the devices are listed after the background import, the choice kept."""
    from napari_doubledip.core import preload

    loaded = {"devices": None}
    monkeypatch.setattr(preload, "devices_if_loaded", lambda: loaded["devices"])
    viewer.add_image(photo48[:32, :32].astype(np.float32), name="img")
    widget = open_widget(viewer, "Denoise")
    assert widget.device.choices == ("auto", "cpu") and widget.device.native.itemText(0) == "auto"
    assert widget.device.value == "cpu" and widget._device_timer.isActive()
    loaded["devices"] = ["cuda:0", "cpu"]
    qtbot.waitUntil(lambda: not widget._device_timer.isActive(), timeout=5000)
    assert widget.device.choices == ("auto", "cuda:0", "cpu")
    assert widget.device.native.itemText(0) == "auto (cuda:0)" and widget.device.value == "cpu"


def test_a_run_keeps_full_garbage_collections_short_and_lets_go_at_the_end(
    viewer, qtbot, photo48, monkeypatch
):
    """While a run goes on the objects from before it are frozen (gc.freeze); after it, nothing is."""
    import gc

    from napari_doubledip._qt import collector

    frozen: list[int] = []
    from napari_doubledip._qt.task_widget import TaskWidget

    original = TaskWidget._on_yielded

    def recording(self, item):
        frozen.append(gc.get_freeze_count())
        original(self, item)

    monkeypatch.setattr(TaskWidget, "_on_yielded", recording)
    viewer.add_image(photo48[:32, :32].astype(np.float32), name="img")
    widget = open_widget(viewer, "Denoise", steps=3)
    assert gc.get_freeze_count() == 0
    click_run_and_wait(qtbot, widget)
    assert frozen and min(frozen) > 1000  # napari, Qt and torch objects out of the collector's walks
    assert gc.get_freeze_count() == 0 and collector.held() == 0


def test_the_widget_builds_the_task_on_its_worker(viewer, qtbot, photo48, monkeypatch):
    from napari_doubledip.core.tasks.denoise import DenoiseTask

    threads: list[threading.Thread] = []
    original = DenoiseTask.__init__

    def recording(self, *args, **kwargs):
        threads.append(threading.current_thread())
        original(self, *args, **kwargs)

    monkeypatch.setattr(DenoiseTask, "__init__", recording)
    viewer.add_image(photo48.astype(np.float32), name="img")
    widget = open_widget(viewer, "Denoise", steps=2)
    state = click_run_and_wait(qtbot, widget)
    assert len(state.results) == 1
    assert threads and all(t is not threading.main_thread() for t in threads)


def test_an_error_building_the_task_on_the_worker_is_reported_and_the_input_untouched(
    viewer, qtbot, photo48, monkeypatch
):
    from napari_doubledip.core.tasks.denoise import DenoiseTask

    def failing(self, *args, **kwargs):
        raise ValueError("image has something only the full conversion finds")

    monkeypatch.setattr(DenoiseTask, "__init__", failing)
    image = photo48.astype(np.float32)
    layer = viewer.add_image(image.copy(), name="img")
    widget = open_widget(viewer, "Denoise", steps=2)
    state = click_run_and_wait(qtbot, widget, timeout=20_000)  # it started: the cheap checks passed
    assert not state.results
    assert "only the full conversion finds" in widget.status.text()
    assert [lay.name for lay in viewer.layers] == ["img"]  # the empty output layer is gone
    np.testing.assert_array_equal(layer.data, image)
    assert widget.run_button.isEnabled()


def test_segment_hints_of_one_label_everywhere_are_refused_at_run(viewer, qtbot, photo48):
    """Issue 13, part 3, item 3: the widget says so at Run, instead of a run that dies on its worker."""
    viewer.add_image(photo48.astype(np.float32), name="scene")
    viewer.add_labels(np.ones((48, 48), np.uint8), name="hints")
    widget = open_widget(viewer, "Segment", steps=2)
    widget.hint_picker.value = viewer.layers["hints"]
    assert not widget.run()
    assert "every pixel as foreground (1)" in widget.status.text()
    assert not widget.is_running and [layer.name for layer in viewer.layers] == ["scene", "hints"]


def test_a_run_that_will_not_fit_is_refused_at_run_with_advice(viewer, qtbot, photo48, monkeypatch):
    """Issue 13, part 3, item 1 in the widget: the memory guard answers at Run, with what to do."""
    from napari_doubledip.core import memory

    monkeypatch.setattr(memory, "available_memory", lambda device: 4 * 2**20)
    viewer.add_image(photo48.astype(np.float32), name="img")
    widget = open_widget(viewer, "Denoise", steps=2)
    assert not widget.run()
    text = widget.status.text()
    assert "needs about" in text and "region" in text and "GPU" in text
    assert not widget.is_running and [layer.name for layer in viewer.layers] == ["img"]
