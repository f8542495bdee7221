"""The ``demo`` subcommand: a task on its bundled sample, headless (or in napari with ``--gui``)."""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import sys
from pathlib import Path
from typing import Any

from .. import registry
from .console import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, fmt_seconds, say
from .jobs import JobProgress
from .parser import api_options
from .sidecar import provenance, run_record, write_json

__all__ = ["run_demo"]


def _has_display() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _demo_gui(args: argparse.Namespace) -> int | None:
    """Open napari with the demo; ``None`` when that is not possible (caller runs headless)."""
    if not _has_display():
        say("demo --gui: no display found (DISPLAY/WAYLAND_DISPLAY unset); running headless instead")
        return None
    try:
        from .._qt.demo import launch_demo
    except ImportError as exc:
        say(f"demo --gui: napari/Qt is not available ({exc}); running headless instead")
        return None
    import inspect

    kwargs: dict[str, Any] = {"task": args.task, "run": True}
    accepted = inspect.signature(launch_demo).parameters
    for name in ("max_seconds", "steps", "seed", "device"):
        value = getattr(args, name, None)
        if name in accepted and value is not None:
            kwargs[name] = value
    launch_demo(**kwargs)
    return EXIT_OK


def _for_file(demo: registry.Demo, key: str, arr: Any) -> tuple[Any, str]:
    """An array as the demo writes it (bool masks 0/255, labels scaled) and its file suffix."""
    import numpy as np

    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if key in demo.display:
        arr = (arr.astype("uint16") * demo.display[key]).clip(0, 255).astype("uint8")
    return arr, ".tif" if key in demo.tiff else ".png"


def run_demo(args: argparse.Namespace) -> int:
    """The ``demo`` subcommand: a task on a bundled sample, headless (or in napari with ``--gui``)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if args.gui:
        status = _demo_gui(args)
        if status is not None:
            return status
    from .. import api
    from .._io import write_image

    entry = registry.get(args.task)
    demo, out = entry.demo, Path(args.out)
    say(
        f"demo: {entry.name} on a {args.size}x{args.size} sample photo (time cap {fmt_seconds(args.max_seconds)})"
    )
    sample = demo.make(args.size)
    opts: dict[str, Any] = {**api_options(args), "min_interval": 1.0}
    if args.threads:
        opts["threads"] = args.threads
    started = _dt.datetime.now(_dt.timezone.utc)
    progress = JobProgress(entry.name, 0.0 if args.quiet else 5.0)
    try:
        result = api.run(entry, *sample.args, callback=progress, **opts)
    except KeyboardInterrupt:
        say("interrupted")
        return EXIT_INTERRUPTED
    except (ValueError, TypeError, MemoryError, RuntimeError) as exc:  # bad settings, out of memory
        from ..core.memory import explain_error

        say(f"error: {explain_error(exc)}")
        return EXIT_FAILED
    arrays, metrics, lines = demo.score(sample, result)
    files: dict[str, str] = {}
    for group in (sample.inputs, arrays, sample.truth):
        for key, arr in group.items():
            data, suffix = _for_file(demo, key, arr)
            files[key] = str(write_image(out / f"{key}{suffix}", data))
    params = dict(result.params)
    provenance_ = provenance("started", started, host=False)
    sidecar = {
        "demo": entry.name,
        "sample_size": args.size,
        "files": {k: Path(v).name for k, v in files.items()},
        "metrics": metrics,
        "parameters": {k: v for k, v in opts.items() if k != "min_interval"},
        **run_record(params),
        "run_params": params,
        **provenance_,
        "seconds": params.get("seconds"),
    }
    write_json(out / "demo.json", sidecar)
    print(
        f"{entry.name}: {params.get('steps_run')} steps in {fmt_seconds(params.get('seconds'))} on "
        f"{params.get('device')} (stopped by: {params.get('stop_reason')})"
    )
    for line in lines:
        print(line)
    print(f"files in {out}/: " + ", ".join(Path(p).name for p in files.values()) + ", demo.json")
    return EXIT_OK
