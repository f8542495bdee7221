"""napari-doubledip: Deep Image Prior and Double-DIP for napari, Python and the command line.

The public functions are imported lazily so that ``import napari_doubledip`` (and napari's
start-up) does not import torch.
"""

from __future__ import annotations

from typing import Any

try:
    from ._version import __version__
except ImportError:  # pragma: no cover - not installed
    __version__ = "0+unknown"

_API = {
    "dehaze",
    "dehaze_stream",
    "denoise",
    "denoise_stream",
    "inpaint",
    "inpaint_stream",
    "remove_watermark",
    "remove_watermark_stream",
    "run_task",
    "segment",
    "segment_stream",
    "separate",
    "separate_stream",
    "stream_task",
}

__all__ = sorted(_API | {"__version__"})


def __getattr__(name: str) -> Any:
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
