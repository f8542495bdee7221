"""Import ahead of time what a process's first run imports, off the caller's thread.

The engine imports scikit-image's and SciPy's modules where it first uses them (importing
``napari_doubledip`` stays light). A first run then spends about a second importing them
(``scipy.stats``, which ``skimage.restoration`` pulls in, 0.9 s after napari's own imports),
holding the GIL in turns that the napari viewer feels as freezes. The widget starts
:func:`preload_in_background` when it opens, so that this is paid before Run is pressed.

Torch itself (1-3 s here, through ``napari_doubledip.api``) is imported there too: the widget's
device choice is filled in once :data:`done` is set (:func:`devices_if_loaded`), so opening a
dock does not import torch on the GUI thread.
"""

from __future__ import annotations

import importlib
import sys
import threading

__all__ = ["MODULES", "devices_if_loaded", "done", "preload", "preload_in_background"]

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
#: Set when :func:`preload` has ended (imported everything, or failed).
done = threading.Event()


def preload() -> None:
    """Import :data:`MODULES` (the names too: scikit-image loads its submodules on first access); then set :data:`done`."""
    try:
        for module, names in MODULES:
            loaded = importlib.import_module(module)
            for name in names:
                getattr(loaded, name)
    finally:
        done.set()


def preload_in_background() -> threading.Thread | None:
    """Start :func:`preload` in a daemon thread, once per process (``None`` when already started)."""
    if _started.is_set():
        return None
    _started.set()
    thread = threading.Thread(target=preload, name="napari-doubledip preload", daemon=True)
    thread.start()
    return thread


def devices_if_loaded() -> list[str] | None:
    """The devices of :func:`~napari_doubledip.core.devices.available_devices` if torch is imported, else ``None``.

    Never imports torch itself (importing it on the GUI thread froze the viewer for 1-3 s when a
    dock opened): ``None`` while :func:`preload` has not finished and torch is not otherwise
    fully imported.
    """
    if not done.is_set() and not _torch_ready():
        return None
    from .devices import available_devices  # imports torch: cheap once it is loaded

    return available_devices()


def _torch_ready() -> bool:
    """Whether torch is fully imported (in ``sys.modules`` and not still being imported by another thread)."""
    torch = sys.modules.get("torch")
    spec = getattr(torch, "__spec__", None)
    return torch is not None and not getattr(spec, "_initializing", False)
