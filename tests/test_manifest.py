"""The napari manifest: valid, complete, every sample loads, and nothing imports torch at start-up."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

npe2 = pytest.importorskip("npe2")

WIDGETS = {"Denoise", "Inpaint", "Segment", "Separate layers", "Remove watermark", "Dehaze"}
SAMPLES = {
    "noisy_photo": ["image"],
    "missing_pixels": ["labels", "image"],
    "segmentation_composite": ["image", "labels"],
    "mixtures": ["image", "image"],
    "watermarked_photos": ["image", "image", "image"],
    "hazy_photo": ["image"],
}


def resolve(manifest, command_id: str):
    """The Python object a manifest command points to."""
    import importlib

    python_name = {c.id: c.python_name for c in manifest.contributions.commands}[command_id]
    module, _, attribute = python_name.partition(":")
    return getattr(importlib.import_module(module), attribute)


@pytest.fixture(scope="module")
def manifest():
    return npe2.PluginManifest.from_distribution("napari-doubledip")


def test_manifest_is_valid_and_lists_the_widgets(manifest):
    result = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", "napari-doubledip"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    widgets = {w.display_name: w.command for w in manifest.contributions.widgets}
    assert set(widgets) == WIDGETS
    commands = {c.id: c.python_name for c in manifest.contributions.commands}
    for command in widgets.values():
        assert command in commands
    menus = manifest.contributions.menus
    assert {item.command for item in menus["napari/layers/segment"]} == {
        "napari-doubledip.make_segment_widget"
    }
    assert len(menus["napari/layers/filter"]) == 5


def test_every_widget_command_resolves_to_a_class_taking_the_viewer(manifest):
    import inspect

    for widget in manifest.contributions.widgets:
        cls = resolve(manifest, widget.command)
        assert inspect.isclass(cls)
        assert "napari_viewer" in inspect.signature(cls.__init__).parameters


@pytest.mark.parametrize("key", sorted(SAMPLES))
def test_every_sample_loads(manifest, key):
    samples = {s.key: s for s in manifest.contributions.sample_data}
    assert set(samples) == set(SAMPLES)
    layers = resolve(manifest, samples[key].command)()
    assert [layer_type for _data, _kwargs, layer_type in layers] == SAMPLES[key]
    for data, kwargs, layer_type in layers:
        assert 128 <= data.shape[0] <= 256 and data.shape[0] == data.shape[1]
        assert np.all(np.isfinite(data))
        assert kwargs["name"]
        if layer_type == "image":
            assert data.dtype == np.float32 and data.min() >= 0 and data.max() <= 1
        else:
            assert np.issubdtype(data.dtype, np.integer) and data.max() >= 1


def test_plugin_modules_do_not_import_torch():
    code = (
        "import sys; import napari_doubledip._sample_data, napari_doubledip._qt, "
        "napari_doubledip.registry, napari_doubledip._qt.run_model; "
        "from napari_doubledip._sample_data import noisy_photo; noisy_photo(); "
        "print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_widget_module_imports_without_torch():
    """Listing the widgets, napari imports the widget module (that must not pull in torch)."""
    pytest.importorskip("qtpy")
    code = (
        "import sys; import napari_doubledip._qt.widgets, napari_doubledip._qt.demo; "
        "print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
