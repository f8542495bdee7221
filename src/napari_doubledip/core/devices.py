"""Choosing the torch device and CPU threading."""

from __future__ import annotations

import os

import torch

__all__ = ["available_devices", "configure_cpu_threads", "resolve_device"]


def available_devices() -> list[str]:
    """Device strings that work on this machine, best first (always ends with ``"cpu"``)."""
    devices = []
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    devices.append("cpu")
    return devices


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"`` (CUDA, then Apple MPS, then CPU) or any torch device string into a device.

    Raises
    ------
    ValueError
        If the string is not a device or the device does not exist here.
    """
    if isinstance(device, torch.device):
        dev = device
    elif device in (None, "auto"):
        return torch.device(available_devices()[0])
    else:
        try:
            dev = torch.device(device)
        except RuntimeError as exc:
            raise ValueError(
                f"unknown device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
            ) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} asked for, but CUDA is not available here; use 'auto' or 'cpu'"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r} does not exist; this machine has {torch.cuda.device_count()} GPU(s)"
            )
    if dev.type == "mps" and str(dev) not in available_devices():
        raise ValueError(
            f"device {device!r} asked for, but Apple MPS is not available here; use 'auto' or 'cpu'"
        )
    return dev


def configure_cpu_threads(threads: int | None) -> int:
    """Set torch's intra-op thread count (``None`` keeps torch's choice); return the count in use.

    Notes
    -----
    Under contention torch's spinning OpenMP threads slow down badly; setting the environment
    variable ``OMP_WAIT_POLICY=PASSIVE`` before torch is imported limits that. The napari plugin
    does so, and leaves one core to the GUI.
    """
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    return torch.get_num_threads()


def cpu_count() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
