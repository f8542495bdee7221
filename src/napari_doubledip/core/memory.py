"""Will a run fit in memory? An estimate from the nets and the image size, checked before a run.

A DIP run keeps every activation of its generators for the backward pass, at the image's
(padded) size, so its memory grows with the pixels times the nets' channels. The estimate
(:func:`estimate_run_bytes`) counts, for every generator, the float32 feature maps a skip net
keeps per pixel (:func:`feature_maps_per_pixel`) at :data:`BYTES_PER_FEATURE` bytes each
(the value and the gradients of the backward pass), plus a fixed start-up cost. Calibrated
with the peak resident memory of CPU runs (``resource.getrusage``, 2 steps, 1 thread, a fresh
process each, RGB float32 inputs; memory over the process after importing torch):

=========================  =========  =========  =========  ==========  ===========
run (measured / estimate)  64²        128²       256²       512²        1024²
=========================  =========  =========  =========  ==========  ===========
denoise, ``default`` net   132 / 161  172 / 194  350 / 326  761 / 853   2674 / 2962
denoise, ``dip-classic``   179 / 189  268 / 308  612 / 781  –           –
denoise, ``doubledip``     –          161 / 168  207 / 223  –           –
segment (defaults, hints)  –          235 / 200  379 / 348  984 / 943   –
separate, two mixtures     –          236 / 236  628 / 496  1482 / 1532 –
watermark, three images    –          346 / 296  924 / 736  2433 / 2493 –
dehaze (defaults)          –          193 / 209  397 / 384  999 / 1087  –
=========================  =========  =========  =========  ==========  ===========

(MB.) The estimate is 0.79x to 1.28x the measured peak, and 0.96x to 1.12x from 512² up,
where the guard matters: a 2048² run of the default net needs about 11 GB, a 3000² one 24 GB.

This module imports neither torch nor Qt at import time (torch only to ask a GPU its free memory).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "FIXED_BYTES",
    "BYTES_PER_FEATURE",
    "MemoryEstimateError",
    "available_memory",
    "check_memory",
    "estimate_run_bytes",
    "estimate_task_bytes",
    "explain_error",
    "feature_maps_per_pixel",
    "format_bytes",
    "is_out_of_memory",
]

#: Start-up cost of a run (allocator, kernels, first autograd graph): measured 116-130 MB.
FIXED_BYTES = 150 * 2**20

#: Bytes per feature map value of :func:`feature_maps_per_pixel`: its float32 value and part of a
#: gradient (fitted to the peaks above, 512² and 1024² above all).
BYTES_PER_FEATURE = 6

#: Messages of allocators that ran out of memory (torch CPU and CUDA, MPS, Python).
_OOM_MARKERS = (
    "out of memory",
    "can't allocate memory",
    "cannot allocate memory",
    "defaultcpuallocator",
    "failed to allocate",
    "memoryerror",
)


class MemoryEstimateError(MemoryError):
    """A run would need more memory than the device has free (raised before it starts).

    Attributes
    ----------
    needed, available
        Estimated bytes the run needs, and bytes free on the device.
    """

    def __init__(self, message: str, needed: int, available: int) -> None:
        super().__init__(message)
        self.needed = needed
        self.available = available


def format_bytes(n: float) -> str:
    """``512 MB``, ``3.2 GB``."""
    if n >= 2**30:
        return f"{n / 2**30:.1f} GB"
    return f"{n / 2**20:.0f} MB"


def feature_maps_per_pixel(config: Any) -> float:
    """Float32 values per input pixel one skip generator of ``config`` keeps for its backward pass.

    ``config`` is a :class:`~napari_doubledip.core.network.NetConfig` (anything with its
    ``input_depth``, ``channels_down``, ``channels_up`` and ``channels_skip``). At level ``i``
    (``1 / 4**i`` of the pixels) a decoder block keeps about six maps of ``channels_up[i]``
    (concatenation, batch norm, convolution, activation, 1x1 convolution, ...), its skip branch
    three of ``channels_skip[i]`` and the upsampled deeper level two of ``channels_up[i + 1]``;
    the encoder block keeps six of ``channels_down[i]`` at the next level's size.
    """
    down, up, skip = list(config.channels_down), list(config.channels_up), list(config.channels_skip)
    total = float(config.input_depth)
    for i in range(len(down)):
        deeper = up[i + 1] if i + 1 < len(up) else 0
        total += (6 * up[i] + 3 * skip[i] + 2 * deeper) / 4**i + 6 * down[i] / 4 ** (i + 1)
    return total


def _padded(size: int, multiple: int) -> int:
    """``size`` padded up to a multiple of ``multiple`` (at least two of them)."""
    return max(size + (-size) % multiple, 2 * multiple)


def estimate_run_bytes(
    generators: Iterable[tuple[Any, int]], spatial_shape: Sequence[int], images: int = 1, channels: int = 3
) -> int:
    """Bytes a run needs beyond the process that starts it.

    Parameters
    ----------
    generators
        ``(NetConfig, number of nets of that config)`` for every generator the task builds.
    spatial_shape
        The image's ``(Y, X)`` (the largest image's, for a group of images).
    images, channels
        Number of images the task holds, and their channels.

    Returns
    -------
    int
        The estimate, in bytes.
    """
    gens = [(cfg, int(n)) for cfg, n in generators]
    multiple = max((2 ** len(cfg.channels_down) for cfg, _ in gens), default=1)
    y, x = (_padded(int(s), multiple) for s in spatial_shape[:2])
    pixels = y * x
    per_pixel = sum(n * BYTES_PER_FEATURE * feature_maps_per_pixel(cfg) for cfg, n in gens)
    per_pixel += images * channels * 4 * 8  # the images, their targets, outputs and averages
    return int(FIXED_BYTES + pixels * per_pixel)


def estimate_task_bytes(task: Any) -> int | None:
    """:func:`estimate_run_bytes` of an engine task before its ``setup`` (``None``: cannot tell).

    Uses the task's :meth:`~napari_doubledip.core.tasks.base.Task.generators` and its image
    layout(s) (``layout``, or ``layouts`` for a group of images: the largest counts); a task
    with neither (one registered from elsewhere) is not estimated.
    """
    layouts = list(getattr(task, "layouts", None) or [getattr(task, "layout", None)])
    if layouts[0] is None or not hasattr(task, "generators"):
        return None
    shape = (max(lay.spatial_shape[0] for lay in layouts), max(lay.spatial_shape[1] for lay in layouts))
    return estimate_run_bytes(task.generators(), shape, images=len(layouts), channels=layouts[0].channels)


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cgroup_free(root: Path = Path("/sys/fs/cgroup"), own: Path = Path("/proc/self/cgroup")) -> int | None:
    """Bytes left under the tightest cgroup memory limit over this process (``None``: no limit).

    The process's cgroup comes from ``/proc/self/cgroup``; it and every cgroup above it count.
    cgroup v2: ``memory.max`` minus ``memory.current``; cgroup v1 (the ``memory`` controller):
    ``memory.limit_in_bytes`` minus ``memory.usage_in_bytes``.
    """
    v1, v2 = root / "memory", root
    chains: list[tuple[Path, str, str]] = []  # (cgroup folder, limit file, usage file)

    def chain(base: Path, path: str, limit: str, usage: str) -> None:
        here = base / path.strip("/") if path.strip("/") else base
        for folder in [here, *here.parents]:
            chains.append((folder, limit, usage))
            if folder == base:
                break

    mine: dict[str, str] = {}
    try:
        for line in own.read_text().splitlines():
            hierarchy, controllers, path = line.split(":", 2)
            if hierarchy == "0":
                mine["v2"] = path
            elif "memory" in controllers.split(","):
                mine["v1"] = path
    except (OSError, ValueError):
        pass
    chain(v2, mine.get("v2", "/"), "memory.max", "memory.current")
    chain(v1, mine.get("v1", "/"), "memory.limit_in_bytes", "memory.usage_in_bytes")
    found = []
    for folder, limit_name, usage_name in chains:
        limit = _read_int(folder / limit_name)
        if limit is not None and limit < 2**60:  # "max", or v1's "no limit" value, read as None / huge
            found.append(max(0, limit - (_read_int(folder / usage_name) or 0)))
    return min(found) if found else None


def _address_space_free() -> int | None:
    """Bytes left under this process's address-space limit (``ulimit -v``; ``None``: unlimited)."""
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):  # pragma: no cover - not POSIX
        return None
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return max(0, soft - int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _meminfo_available() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes, else free physical pages (``None``: unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None


def available_memory(device: Any = "cpu") -> int | None:
    """Bytes free for a run on ``device`` (``None``: this platform does not say).

    CPU: the smallest of the system's available memory, what a cgroup memory limit leaves, and
    what an address-space limit (``ulimit -v``) leaves, where those are set. CUDA: the GPU's
    free memory (``torch.cuda.mem_get_info``). Other devices: ``None``.
    """
    kind = getattr(device, "type", None) or str(device).split(":")[0]
    if kind == "cpu":
        values = [v for v in (_meminfo_available(), _cgroup_free(), _address_space_free()) if v is not None]
        return min(values) if values else None
    if kind == "cuda":
        import torch

        try:
            free, _total = torch.cuda.mem_get_info(device)
        except (RuntimeError, AssertionError):  # pragma: no cover - driver trouble
            return None
        return int(free)
    return None


def check_memory(needed: int, device: Any, available: int | None = None, *, what: str = "this run") -> None:
    """Raise :class:`MemoryEstimateError` when ``needed`` bytes will not fit on ``device``.

    Parameters
    ----------
    needed
        Estimated bytes (:func:`estimate_run_bytes`).
    device
        The torch device (or its string) the run will use.
    available
        Free bytes (default: :func:`available_memory` of ``device``); ``None`` there: no check.
    what
        What the message calls the run (``"denoise on a 3000 x 3000 image"``).
    """
    if available is None:
        available = available_memory(device)
    if available is None or needed <= available:
        return
    kind = getattr(device, "type", None) or str(device).split(":")[0]
    where = "GPU memory" if kind == "cuda" else "memory"
    advice = "run it on a region (crop) or a smaller (downscaled) image, the 'default' or 'doubledip' net" + (
        ", or on a GPU with more free memory" if kind == "cuda" else ", or on a GPU (device='cuda')"
    )
    raise MemoryEstimateError(
        f"{what} needs about {format_bytes(needed)} of {where} but {format_bytes(available)} is free on "
        f"{device}: {advice}",
        needed,
        available,
    )


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says a device or the process ran out of memory."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    low = str(exc).lower()
    return any(marker in low for marker in _OOM_MARKERS)


def explain_error(exc: BaseException) -> str:
    """A one-paragraph message for a failed run, with advice for the usual causes.

    Used by the command line and meant for the widget's notifications. Out of memory (torch's
    CPU allocator ``DefaultCPUAllocator: can't allocate memory``, CUDA and MPS out of memory, a
    Python ``MemoryError``, or this module's own refusal): use a region, a smaller image, a
    smaller net, or a GPU. Apple MPS failures: use the CPU.
    """
    exc = getattr(exc, "original", exc)
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, MemoryEstimateError):
        return text
    if is_out_of_memory(exc):
        return (
            "The run ran out of memory. Use a region of the image (crop it) or a smaller image "
            "(downscale it), the 'default' net preset, or a device with more memory (a GPU, or "
            f"device 'cpu' when the GPU is small). ({text})"
        )
    if "mps" in str(exc).lower():
        return f"Apple MPS failed; choose device 'cpu'. ({text})"
    return text
