"""The task registry: a task is its module and its entry.

This module adds a test-only task, "invert" (one generator fitting ``1 - image``), in this file
alone, and finds it in the API, the CLI and a widget. It also checks napari.yaml against the
registry and that the faces agree with the options dataclasses.
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from napari_doubledip import registry
from napari_doubledip.core.options import GeneratorOptions, option

SRC = Path(__file__).resolve().parents[1] / "src" / "napari_doubledip"


# --- the test-only task: an options dataclass, a Task class and an entry ---------------------
@dataclass(frozen=True, kw_only=True)
class InvertOptions(GeneratorOptions):
    """Options of :class:`InvertTask`."""

    strength: float = option(1.0, "how far towards 1 - image the target is", shown=True, maximum=1.0)

    def check(self) -> None:
        super().check()
        if not 0 <= self.strength <= 1:
            raise ValueError(f"strength must be in [0, 1], got {self.strength}")


def _invert_task_class():
    from napari_doubledip.core.tasks.reconstruction import ImageReconstructionTask, weighted_mse

    class InvertTask(ImageReconstructionTask):
        """Fit one generator to ``strength * (1 - image) + (1 - strength) * image``."""

        name = "invert"
        default_steps = 40
        options_class = InvertOptions

        def setup(self, ctx):
            super().setup(ctx)
            s = self.opts.strength
            self.target = s * (1 - self.image.tensor) + (1 - s) * self.image.tensor

        def loss(self, out, step):
            data = weighted_mse(out["image"], self.target, self.weight)
            return data, {"data": data}

    return InvertTask


def __getattr__(name):  # the entry's "module:Class" resolves here, on first use (imports torch)
    if name == "InvertTask":
        return _invert_task_class()
    raise AttributeError(name)


ENTRY = registry.TaskEntry(
    name="invert",
    title="Invert",
    api="invert",
    task=f"{__name__}:InvertTask",
    options=InvertOptions,
    help="invert each image",
    description="Fit a network to one minus the image.",
    outputs=(registry.Output("image", "inverted"),),
    summary="Invert an image with a Deep Image Prior.",
    doc="image\n    2-D gray or ``(Y, X, C)`` image.",
    result="ImageResult",
)


@pytest.fixture
def invert():
    with registry.registered(ENTRY) as entry:
        yield entry


@pytest.fixture
def halves() -> np.ndarray:
    image = np.zeros((32, 32), np.float32)
    image[:, 16:] = 1.0
    return image


def _mse(a, b) -> float:
    return float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))


def test_a_registered_task_has_api_functions(invert, halves):
    import napari_doubledip as dd
    from napari_doubledip import api

    assert "invert" in dir(dd) and "invert_stream" in dd.__all__
    params = inspect.signature(dd.invert).parameters
    assert list(params)[:2] == ["image", "steps"] and params["strength"].default == 1.0
    result = dd.invert(halves, steps=60, seed=0, device="cpu", threads=1, early_stop=False, lr=0.02)
    assert type(result).__name__ == "ImageResult"
    assert _mse(result.image, 1 - halves) < _mse(result.image, halves)
    assert result.params["task"] == "invert" and result.params["strength"] == 1.0
    snaps = list(api.invert_stream(halves, steps=2, device="cpu", min_interval=0))
    assert snaps[-1].done and "image" in snaps[-1].outputs
    with pytest.raises(ValueError, match="strength"):
        dd.invert(halves, strength=2.0)
    with pytest.raises(TypeError):
        dd.invert(halves, no_such_option=1)


def test_a_registered_task_has_a_cli_subcommand(invert, halves, tmp_path):
    import json

    from napari_doubledip import cli
    from napari_doubledip._io import write_image

    write_image(tmp_path / "halves.png", (halves * 255).astype(np.uint8))
    out = tmp_path / "out"
    args = ["invert", str(tmp_path / "halves.png"), "--out", str(out), "--steps", "3", "--device", "cpu"]
    assert cli.main([*args, "--strength", "0.5", "--quiet"]) == 0
    sidecar = json.loads((out / "halves_invert.json").read_text())
    assert sidecar["parameters"]["strength"] == 0.5 and sidecar["steps_run"] == 3
    assert (out / "halves_invert.png").is_file()


def test_a_registered_task_has_a_widget(invert, halves, make_napari_viewer_proxy, qtbot):
    pytest.importorskip("napari")
    from qtpy.QtCore import Qt

    from napari_doubledip._qt import widgets

    viewer = make_napari_viewer_proxy()
    layer = viewer.add_image(halves, name="halves")
    widget = widgets.InvertWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Invert")
    assert widget.spec is invert and widget.steps.value == 40
    assert widget.param_widgets["strength"].value == pytest.approx(1.0)
    widget.set_inputs([layer])
    widget.steps.value = 3
    widget.device.value = "cpu"
    with qtbot.waitSignal(widget.run_finished, timeout=60_000):
        qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
    assert "halves · inverted" in [lay.name for lay in viewer.layers]
    assert "3 steps" in widget.status.text()


def test_unregistered_tasks_are_gone(invert):
    from napari_doubledip import cli

    registry.unregister("invert")
    with pytest.raises(SystemExit):
        cli.main(["invert", "x.png", "--out", "o"])
    with pytest.raises(KeyError):
        registry.get("invert")
    registry.register(invert)


# --- the built-in tasks against their faces ----------------------------------------------------
def test_the_manifest_matches_the_registry():
    import yaml

    manifest = yaml.safe_load((SRC / "napari.yaml").read_text())["contributions"]
    commands = {c["id"]: c["python_name"] for c in manifest["commands"]}
    widgets = {w["display_name"]: w["command"] for w in manifest["widgets"]}
    samples = {s["key"]: s for s in manifest["sample_data"]}
    menus = {item["command"]: menu for menu, items in manifest["menus"].items() for item in items}
    entries = registry.entries()
    assert set(widgets) == {e.title for e in entries}
    assert set(samples) == {e.sample.key for e in entries}
    for e in entries:
        command = widgets[e.title]
        assert commands[command] == f"napari_doubledip._qt.widgets:{e.widget_class}"
        assert menus[command] == e.menu
        sample = samples[e.sample.key]
        assert commands[sample["command"]] == f"napari_doubledip._sample_data:{e.sample.key}"
        assert sample["display_name"] == e.sample.display_name


@pytest.mark.parametrize("entry", registry.entries(), ids=lambda e: e.name)
def test_api_signatures_and_faces_follow_the_options(entry):
    from napari_doubledip import api, cli

    sig = inspect.signature(getattr(api, entry.api))
    for info in entry.options.info():
        assert sig.parameters[info.name].default == info.default
    assert sig.return_annotation == entry.result
    assert entry.default_steps == entry.task_class.default_steps
    parser = cli.build_parser()
    sub = parser._subparsers._group_actions[0].choices[entry.name]
    flags = {s for a in sub._actions for s in a.option_strings}
    for info in entry.shown_options:
        assert info.flag in flags and set(info.cli_aliases) <= flags
    options = entry.options()
    assert options.record().keys() <= {i.name for i in entry.options.info()}


def test_old_option_names_still_work():
    from napari_doubledip.registry.watermark import WatermarkOptions

    flags = {i.name: i for i in WatermarkOptions.info()}
    assert "--start-opacity" in flags["mask_init"].cli_aliases
    assert {"--colour", "--color"} <= set(flags["watermark"].cli_aliases)
    with pytest.raises(ValueError, match="mask_init"):
        WatermarkOptions(mask_init=1.5)


def _literals(path: Path) -> set[str]:
    return {
        node.value
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def test_task_names_live_in_at_most_two_source_files():
    files = {path: _literals(path) for path in SRC.rglob("*.py")}
    for entry in registry.entries():
        holders = sorted(str(p.relative_to(SRC)) for p, lits in files.items() if entry.name in lits)
        assert len(holders) <= 2, (entry.name, holders)


def test_no_source_file_is_over_500_lines():
    long = {
        str(p.relative_to(SRC)): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > 500
    }
    assert not long, long
