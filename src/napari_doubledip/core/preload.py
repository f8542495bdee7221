"""Import ahead of time what a process's first run imports, off the caller's thread.

The engine imports scikit-image's and SciPy's modules where it first uses them (importing
``napari_doubledip`` stays light). A first run then spends about a second importing them
(``scipy.stats``, which ``skimage.restoration`` pulls in, 0.9 s after napari's own imports),
holding the GIL in turns that the napari viewer feels as freezes. The widget starts
:func:`preload_in_background` when it opens, so that this is paid before Run is pressed.
"""

from __future__ import annotations

import importlib
import threading

__all__ = ["MODULES", "preload", "preload_in_background"]

#: Modules and the names the engine takes from them, in the order a first run needs them.
MODULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("napari_doubledip.api", ()),
    ("scipy.ndimage", ()),
    ("skimage.restoration", ("estimate_sigma", "denoise_nl_means", "denoise_wavelet", "inpaint_biharmonic")),
    ("scipy.optimize", ("nnls",)),
    ("scipy.special", ("ndtr",)),
    ("skimage.color", ("rgb2lab",)),
    ("skimage.filters", ("threshold_otsu", "apply_hysteresis_threshold")),
    ("skimage.segmentation", ("random_walker",)),
)

_started = threading.Event()


def preload() -> None:
    """Import :data:`MODULES` (the names too: scikit-image loads its submodules on first access)."""
    for module, names in MODULES:
        loaded = importlib.import_module(module)
        for name in names:
            getattr(loaded, name)


def preload_in_background() -> threading.Thread | None:
    """Start :func:`preload` in a daemon thread, once per process (``None`` when already started)."""
    if _started.is_set():
        return None
    _started.set()
    thread = threading.Thread(target=preload, name="napari-doubledip preload", daemon=True)
    thread.start()
    return thread
