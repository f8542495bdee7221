"""Command line: batch runs of every registered task over files, folders and stacks, and the demo.

``napari-doubledip TASK INPUTS... --out DIR`` (or ``python -m napari_doubledip ...``) runs one job
per image (image group for tasks that take several, frame with ``--frames``), in-process or on
dask.distributed (``--workers N``, ``--scheduler ADDR``), and writes each result next to a JSON
sidecar that makes reruns skip finished work.

Modules: :mod:`.parser` (flags from the registry), :mod:`.plan` (inputs -> jobs), :mod:`.jobs`
(one job), :mod:`.execute` (in-process, dask, stacks), :mod:`.sidecar` (JSON records),
:mod:`.demo`. Nothing here imports torch or Qt at start (``--help`` stays fast); the engine is
imported inside the jobs.
"""

from __future__ import annotations

from collections.abc import Sequence

from .console import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from .jobs import read_binary as _read_binary  # noqa: F401 - the old name, still used
from .jobs import run_frame_jobs, run_job
from .parser import build_parser, parse_frames, parse_region
from .plan import Job, Plan, plan_batch

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Job",
    "Plan",
    "build_parser",
    "main",
    "parse_frames",
    "parse_region",
    "plan_batch",
    "run_frame_jobs",
    "run_job",
]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``napari-doubledip`` and ``python -m napari_doubledip``; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(args)
    from .execute import run_batch

    return run_batch(args)
