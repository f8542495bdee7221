"""Keep Python's full garbage collections short while a widget's run goes on.

A full (generation 2) collection walks every object the process tracks: with napari, vispy,
Qt, torch and SciPy loaded that is a few hundred thousand objects, and one collection holds the
GIL for 0.2-0.8 s on a loaded 2-core machine. The worker's steps allocate enough to trigger one
now and then, in whichever thread allocates: the viewer freezes for that long (the largest
gaps of single runs in BENCHMARKS.md's responsiveness section). While a run goes on,
:func:`hold` moves the objects that exist at its start out of the collector's view
(:func:`gc.freeze`), so that collections only walk what the run creates; :func:`release` puts
them back when the last run ends (cyclic garbage from before the run is collected then).
"""

from __future__ import annotations

import gc
import threading

__all__ = ["held", "hold", "release"]

_lock = threading.Lock()
_holders = 0


def hold() -> None:
    """Start a run's hold: the first holder freezes the objects that exist now."""
    global _holders
    with _lock:
        if _holders == 0:
            gc.freeze()
        _holders += 1


def release() -> None:
    """End a run's hold: the last holder unfreezes (extra calls are ignored)."""
    global _holders
    with _lock:
        if _holders == 0:
            return
        _holders -= 1
        if _holders == 0:
            gc.unfreeze()


def held() -> int:
    """How many runs hold the collector now."""
    return _holders
