"""napari-doubledip: Deep Image Prior and Double-DIP for napari, Python and the command line.

The public functions (one blocking function and one stream per registered task, plus
``run``/``stream`` by task name and ``run_task``/``stream_task`` for an engine task) are imported
lazily so that ``import napari_doubledip`` (and napari's start-up) does not import torch.
"""

from __future__ import annotations

from typing import Any

try:
    from ._version import __version__
except ImportError:  # pragma: no cover - not installed
    __version__ = "0+unknown"

#: API functions that are not a task's.
_GENERIC = ("function", "run", "run_task", "stream", "stream_task")


def _api_names() -> list[str]:
    from .registry import entries

    return [*_GENERIC, *(name for e in entries() for name in (e.api, e.stream))]


def __getattr__(name: str) -> Any:
    if name == "__all__":
        return sorted([*_api_names(), "__version__"])
    if name in _api_names():
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*_api_names(), "__version__"])
