"""The GUI demo: a napari viewer with a task's sample, its widget docked, and (optionally) running."""

from __future__ import annotations

from typing import Any

__all__ = ["launch_demo", "open_demo"]

PLUGIN = "napari-doubledip"


def open_demo(
    task: str | None = None,
    run: bool = True,
    viewer: Any = None,
    *,
    steps: int | None = None,
    max_seconds: float | None = None,
    seed: int | None = None,
    device: str | None = None,
) -> tuple[Any, Any]:
    """Load ``task``'s sample into a viewer, dock its widget and optionally start it.

    Parameters
    ----------
    task
        A registered task with a sample, by name or by its API function's name (default: the first).
    run
        Click Run.
    viewer
        A viewer to use (default: a new one).
    steps, max_seconds, seed, device
        Settings for the widget (default: the widget's own).

    Returns
    -------
    viewer, widget
    """
    import napari

    from .. import registry

    demos = {e.name: e for e in registry.entries() if e.sample is not None}
    try:
        entry = registry.get(task) if task is not None else next(iter(demos.values()))
    except KeyError:
        entry = None
    if entry is None or entry.name not in demos:
        raise ValueError(f"unknown demo task {task!r}; choose one of {sorted(demos)}")
    sample, display_name = entry.sample.key, entry.title
    if viewer is None:
        viewer = napari.Viewer(title=f"napari-doubledip demo: {display_name}")
    layers = viewer.open_sample(PLUGIN, sample)
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, display_name)
    images = [layer for layer in layers or [] if isinstance(layer, napari.layers.Image)]
    if images:
        widget.set_inputs(images)
    if steps is not None:
        widget.steps.value = int(steps)
    if max_seconds is not None:
        widget.max_seconds.value = float(max_seconds)
    if seed is not None:
        widget.seed.value = int(seed)
    if device is not None:
        _choose_device(widget, device)
    if run:
        widget.run()
    return viewer, widget


def _choose_device(widget: Any, device: str) -> None:
    names = list(widget.device.choices)
    wanted = {"cuda": "cuda:0"}.get(device, device)
    if wanted not in names:
        raise ValueError(f"device {device!r} is not available here; choose one of {names}")
    widget.device.value = wanted


def launch_demo(
    task: str | None = None,
    run: bool = True,
    *,
    steps: int | None = None,
    max_seconds: float | None = None,
    seed: int | None = None,
    device: str | None = None,
) -> None:
    """Open the demo of ``task`` (see :func:`open_demo`) and hand over to napari's event loop."""
    import napari

    open_demo(task, run=run, steps=steps, max_seconds=max_seconds, seed=seed, device=device)
    napari.run()
