"""Import ahead of time what a process's first run imports, off the caller's thread.

The engine imports scikit-image's and SciPy's modules where it first uses them (importing
``napari_doubledip`` stays light). A first run then spends about a second importing them
(``scipy.stats``, which ``skimage.restoration`` pulls in, 0.9 s after napari's own imports),
holding the GIL in turns that the napari viewer feels as freezes. The widget starts
:func:`preload_in_background` when it opens, so that this is paid before Run is pressed.

Torch itself (1-3 s here, through ``napari_doubledip.api``) is imported there too: the widget's
device choice is filled in once :data:`done` is set (:func:`devices_if_loaded`), so opening a
dock does not import torch on the GUI thread. Importing torch holds the GIL longest while the
dynamic loader maps and initialises its C++ libraries (``import torch._C``, 0.3 s in one piece
here): :func:`load_torch_libraries` has the loader do that first through a plain C call, which
releases the GIL, so that the viewer keeps running meanwhile.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import os
import sys
import threading
import time

__all__ = ["MODULES", "devices_if_loaded", "done", "load_torch_libraries", "preload", "preload_in_background"]

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

#: torch's C++ libraries (in ``torch/lib``), in load order; those missing are skipped.
TORCH_LIBRARIES = (
    "libgomp.so.1",
    "libc10.so",
    "libtorch_cpu.so",
    "libc10_cuda.so",
    "libtorch_cuda.so",
    "libtorch.so",
)
#: A pause between two modules' imports (s): the GUI thread takes the GIL back in between.
PAUSE_S = 0.02

_started = threading.Event()
#: Set when :func:`preload` has ended (imported everything, or failed).
done = threading.Event()


def preload() -> None:
    """Import :data:`MODULES` (the names too: scikit-image loads its submodules on first access); then set :data:`done`."""
    try:
        load_torch_libraries()
        for module, names in MODULES:
            loaded = importlib.import_module(module)
            for name in names:
                getattr(loaded, name)
            time.sleep(PAUSE_S)
    finally:
        done.set()


def load_torch_libraries() -> int:
    """Map torch's C++ libraries with the GIL released, before torch is imported; return how many.

    Calls the C library's ``dlopen`` through :mod:`ctypes` (a foreign call releases the GIL; the
    libraries' static initialisers are C++ only). ``import torch`` then finds them loaded. Does
    nothing once torch is imported, off Linux, or when anything fails (the import then loads
    them itself, holding the GIL).
    """
    if "torch" in sys.modules or not sys.platform.startswith("linux"):
        return 0
    try:
        spec = importlib.util.find_spec("torch")
        if spec is None or not spec.submodule_search_locations:
            return 0
        folder = os.path.join(list(spec.submodule_search_locations)[0], "lib")
        dlopen = ctypes.CDLL(None).dlopen
        dlopen.restype = ctypes.c_void_p
        dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
        loaded = 0
        for name in TORCH_LIBRARIES:
            path = os.path.join(folder, name)
            if os.path.exists(path) and dlopen(path.encode(), os.RTLD_NOW | os.RTLD_LOCAL):
                loaded += 1
        return loaded
    except (AttributeError, OSError, ValueError, ImportError):
        return 0


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
