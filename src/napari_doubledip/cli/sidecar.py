"""JSON sidecars: what a result records, written atomically, and whether a rerun can skip it."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "jsonable",
    "normalise",
    "numerics_record",
    "provenance",
    "run_record",
    "sidecar_matches",
    "versions",
    "write_json",
]


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars/arrays, paths, tuples and sets turned into JSON types."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and obj != obj:  # NaN
        return None
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "__dict__"):
        return jsonable(vars(obj))
    return repr(obj)


def versions() -> dict[str, str]:
    """Versions of the package, torch, numpy and Python (torch only if already imported or importable)."""
    import numpy as np

    from .. import __version__

    out = {"napari_doubledip": __version__, "numpy": np.__version__, "python": platform.python_version()}
    try:
        import torch

        out["torch"] = torch.__version__
    except ImportError:  # pragma: no cover - torch is a dependency
        out["torch"] = "missing"
    return out


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically (the sidecar marks a finished result, so it goes last and whole)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp.write_text(json.dumps(jsonable(data), indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def normalise(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (for comparing requests)."""
    return json.loads(json.dumps(jsonable(obj)))


def sidecar_matches(
    sidecar: Path,
    request: dict[str, Any],
    outputs: Sequence[str | Path],
    device_kind: Callable[[], str | None] | None = None,
) -> bool:
    """Whether ``sidecar`` records a finished run of ``request`` and all ``outputs`` exist.

    ``device_kind()``, when given and not ``None``, is the kind of device (``"cpu"``,
    ``"cuda"``, ...) a run would use now: a result computed on another kind (``--device auto``
    on a machine that has since gained or lost a GPU) does not match, because the device changes
    the numerics.
    """
    try:
        recorded = json.loads(Path(sidecar).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(recorded, dict) or recorded.get("request") != normalise(request):
        return False
    if not all(Path(p).is_file() for p in outputs):
        return False
    if device_kind is not None:
        kind = device_kind()
        numerics = recorded.get("numerics")
        recorded_kind = numerics.get("device_kind") if isinstance(numerics, dict) else None
        if kind is not None and recorded_kind is not None and recorded_kind != kind:
            return False
    return True


def numerics_record(params: Mapping[str, Any]) -> dict[str, Any]:
    """What decided a run's numerics, from its result's ``params``: device, its kind, threads, precision."""
    device = params.get("device")
    return {
        "device": device,
        "device_kind": str(device).split(":")[0] if device is not None else None,
        "threads": params.get("threads"),
        "precision": params.get("precision"),
    }


def run_record(params: Mapping[str, Any], seed: Any = None) -> dict[str, Any]:
    """How a run went, as every sidecar (job, stack frame, demo) records it.

    ``params`` is a result's ``params`` (or a job sidecar, which holds the same keys);
    ``seed`` stands in when it records none.
    """
    return {
        "seed": params.get("seed", seed),
        "steps_run": params.get("steps_run"),
        "stop_reason": params.get("stop_reason"),
        "final_losses": params.get("final_losses"),
        "device": params.get("device"),
    }


def provenance(key: str = "started", when: _dt.datetime | None = None, host: bool = True) -> dict[str, Any]:
    """Versions, host and a UTC time stamp under ``key`` (``"started"`` or ``"written"``)."""
    when = when or _dt.datetime.now(_dt.timezone.utc)
    out: dict[str, Any] = {"versions": versions()}
    if host:
        out["host"] = platform.node()
    out[key] = when.isoformat(timespec="seconds")
    return out
