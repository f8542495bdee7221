"""The dock widgets: one :class:`TaskWidget` subclass per registered task, named ``<Name>Widget``.

napari's manifest points at these classes (``napari_doubledip._qt.widgets:DenoiseWidget``); they
are built from the registry, and a task registered later gets its class on first access.
"""

from __future__ import annotations

from typing import Any

from .. import registry
from .task_widget import TaskWidget

__all__ = ["widget_class"]

_CLASSES: dict[str, type[TaskWidget]] = {}


def widget_class(task: str | registry.TaskEntry) -> type[TaskWidget]:
    """The dock-widget class of a registered task (napari instantiates it with ``napari_viewer``)."""
    entry = registry.get(task) if isinstance(task, str) else task
    cls = _CLASSES.get(entry.widget_class)
    if cls is None or cls.spec is not entry:
        doc = f"The {entry.title} dock widget."
        cls = type(entry.widget_class, (TaskWidget,), {"spec": entry, "__doc__": doc, "__module__": __name__})
        _CLASSES[entry.widget_class] = cls
    return cls


for _entry in registry.entries():
    globals()[_entry.widget_class] = widget_class(_entry)
    __all__.append(_entry.widget_class)
del _entry


def __getattr__(name: str) -> Any:
    for entry in registry.entries():
        if entry.widget_class == name:
            return widget_class(entry)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
