"""Runs over the frames of a stack: one after the other, or side by side on one grouped net.

The widget's "All frames" and the CLI's ``--frames`` go through :func:`stream_frames`: where the
frames batch (single-image reconstructions; on a GPU as many as its memory holds, see
:func:`~napari_doubledip.core.tasks.frames.frame_batch_size`) they run as one
:class:`~napari_doubledip.core.tasks.frames.FramesTask`, elsewhere each frame is its own run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import registry
    from .core.snapshot import Snapshot
    from .core.tasks.base import Result

__all__ = ["frame_snapshot", "stream_frames"]


def frame_snapshot(snapshot: Snapshot, t: int) -> Snapshot:
    """Frame ``t``'s view of a snapshot of a batch of frames (its outputs' ``t``-th entries; read-only views)."""
    return dataclasses.replace(
        snapshot, outputs=MappingProxyType({key: value[t] for key, value in snapshot.outputs.items()})
    )


def _placed(
    stream: Generator[Snapshot, None, Any], first: int, batch: int | None
) -> Generator[tuple[int, Snapshot], None, Any]:
    """Yield each snapshot of ``stream`` with its frame position; return the stream's result.

    ``batch``: ``None`` for one frame's run (at position ``first``), else the number of frames of
    a batch run, whose snapshots are split into one per frame (:func:`frame_snapshot`).
    """
    while True:
        try:
            snapshot = next(stream)
        except StopIteration as end:
            return end.value
        if batch is None:
            yield first, snapshot
        else:
            for t in range(batch):
                yield first + t, frame_snapshot(snapshot, t)


def stream_frames(
    task: str | registry.TaskEntry,
    frames: Sequence[Sequence[Any]],
    *,
    batch_frames: int | str = "auto",
    steps: int | None = None,
    max_seconds: float | None = None,
    seed: int = 0,
    device: str = "auto",
    early_stop: bool = True,
    **options: Any,
) -> Generator[tuple[int, Snapshot], None, list[Result]]:
    """Snapshots of runs of ``task`` over frames: yields ``(frame position, snapshot)``; returns their results.

    Parameters
    ----------
    task
        A registered task (name or entry).
    frames
        Per frame, the task's positional inputs (e.g. ``(image_t, mask)``).
    batch_frames
        How many frames run side by side on one grouped net: ``"auto"`` (on a CUDA GPU as many
        as its free memory holds; one at a time elsewhere) or a positive number. Only
        single-image reconstructions (denoising, inpainting) batch; other tasks run frame by
        frame. A batch shares ``steps`` and ``max_seconds`` (it is one run), and the step its
        frames stop at.
    steps, max_seconds, seed, device, early_stop, **options
        As for :func:`~napari_doubledip.api.stream`, for every frame (or batch). A ``stop`` flag
        set ends the run; frames not started are left out.

    Returns
    -------
    list of Result
        Each finished frame's result, in order (fewer than the frames when stopped).
    """
    from . import api
    from .core import memory
    from .core.devices import resolve_device
    from .core.loop import optimise
    from .core.tasks.frames import FramesTask, frame_batch_size

    entry = api._entry(task)
    check_memory, loop, own = api._checked_options(options, steps, max_seconds, seed, early_stop)
    run = {
        "steps": steps,
        "max_seconds": max_seconds,
        "seed": seed,
        "device": device,
        "early_stop": early_stop,
    }
    stop = loop.get("stop")
    dev = resolve_device(device)
    per_frame = None
    probe = None  # the first frame's task, built to size the batch; the first batch reuses it
    if len(frames) > 1 and batch_frames == "auto" and dev.type == "cuda":  # the GPU's memory decides
        probe = api.build_task(entry, *frames[0], **own)
        per_frame = memory.estimate_task_bytes(probe)
    size = frame_batch_size(entry.task_class, len(frames), per_frame, dev, batch_frames)
    results: list[Result] = []
    position = 0
    while position < len(frames):
        if position and stop is not None and stop.is_set():
            break
        chunk = frames[position : position + size]
        if len(chunk) == 1:
            single = getattr(api, entry.stream)(*chunk[0], **run, **options)
            results.append((yield from _placed(single, position, None)))
        else:
            tasks = [
                probe if (position + t == 0 and probe is not None) else api.build_task(entry, *inputs, **own)
                for t, inputs in enumerate(chunk)
            ]
            probe = None
            batch = FramesTask(tasks)  # type: ignore[arg-type]
            if check_memory:
                needed = memory.estimate_task_bytes(batch)
                if needed is not None:
                    memory.check_memory(needed, dev, what=f"{entry.name} of {len(chunk)} frames side by side")
            done = yield from _placed(optimise(batch, **run, **loop), position, len(chunk))
            results.extend(done.results)
        position += len(chunk)
    return results
