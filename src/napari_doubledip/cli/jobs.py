"""One job, in-process or on a dask worker: read its inputs, run its task, write files and sidecar."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .. import registry
from .console import fmt_seconds, say
from .plan import NOT_STACK_AXES, Job
from .sidecar import numerics_record, provenance, run_record, write_json

__all__ = ["JobProgress", "read_binary", "read_hints", "read_input", "run_frame_jobs", "run_job"]


class JobProgress:
    """Throttled progress lines of one running job on stderr; keeps the final snapshot's outputs."""

    def __init__(self, name: str, every: float) -> None:
        self.name = name
        self.every = every
        self.last = time.monotonic()
        self.outputs: dict[str, Any] = {}
        self.expectation_said = False

    def __call__(self, snap: Any) -> None:
        """Keep the final snapshot's outputs; print a progress line at most every ``every`` seconds.

        A long run also says once, as soon as its step time is known, what to expect.
        """
        if snap.done:
            self.outputs = dict(snap.outputs)
        if self.every <= 0 or snap.done:
            return
        if not self.expectation_said and snap.expected_seconds is not None:
            self.expectation_said = True
            line = snap.expectation()
            if line is not None:
                say(f"    {self.name}: {line}")
        now = time.monotonic()
        if now - self.last < self.every:
            return
        self.last = now
        cap = f"/{snap.total}" if snap.total else ""
        loss = snap.losses.get("total")
        loss_text = f", loss {loss:.5g}" if loss is not None else ""
        eta = f", eta {fmt_seconds(snap.eta)}" if snap.step >= 10 else ""  # set-up skews early guesses
        say(
            f"    {self.name}: step {snap.step}{cap} ({snap.progress:.0%}), {fmt_seconds(snap.elapsed)}"
            f" elapsed{eta}{loss_text}"
        )


def _is_stack(arr: Any, axes: str) -> bool:
    """Whether an array read with ``axes`` is a stack of frames (first axis T, Z, Q, I, ...)."""
    return arr.ndim >= 3 and axes[0] not in NOT_STACK_AXES


def _read_frame(path: str, frame: int | None, axes: str | None = None) -> Any:
    from .._io import read_image

    arr, axes = read_image(path, axes)
    return arr[frame] if frame is not None and _is_stack(arr, axes) else arr


def _check_size(arr: Any, shape: tuple[int, ...], what: str, path: str) -> None:
    if arr.shape != tuple(shape[:2]):
        raise ValueError(
            f"{what} {Path(path).name} is {arr.shape[0]}x{arr.shape[1]} but the image is {shape[0]}x{shape[1]}"
        )


def read_binary(
    path: str, shape: tuple[int, ...], what: str, frame: int | None = None, axes: str | None = None
) -> Any:
    """A mask file as bool ``(Y, X)`` of the image's ``shape`` (nonzero, or above half the maximum)."""
    import numpy as np

    from ..core.conversion import mask_plane

    arr = _read_frame(path, frame, axes)
    if arr.ndim == 3:
        arr = mask_plane(arr)  # the alpha of an RGBA file whose alpha varies, else its colour
    values = arr.astype(np.float64)
    peak = values.max() if values.size else 0
    # a 0/255 (or 0/65535) file is split at half its maximum; a 0/1 file at 0
    mask = values > peak / 2 if peak > 1 else values > 0
    _check_size(mask, shape, what, path)
    return mask


def read_hints(
    path: str, shape: tuple[int, ...], frame: int | None = None, what: str = "hints", axes: str | None = None
) -> Any:
    """A label file (first channel of a colour file) of the image's ``shape``."""
    arr = _read_frame(path, frame, axes)
    if arr.ndim == 3:
        arr = arr[..., 0]
    _check_size(arr, shape, what, path)
    return arr


def read_input(path: str, frame: int | None, axes: str | None = None) -> Any:
    """An input image (channels last), or one frame of a stack (``axes``: ``--axes``, if given)."""
    from .._io import read_image

    arr, axes = read_image(path, axes)
    is_stack = _is_stack(arr, axes)
    if axes[0] in "CS" and arr.ndim == 3:  # channels first -> channels last
        import numpy as np

        arr = np.moveaxis(arr, 0, -1)
    if frame is not None:
        if not is_stack:
            raise ValueError(f"{Path(path).name} is not a stack (axes {axes}, shape {arr.shape})")
        return arr[frame]
    if is_stack:
        raise ValueError(
            f"{Path(path).name} is a stack of {arr.shape[0]} frames (axes {axes}, shape {arr.shape}): "
            "add --frames all (or N, or A:B) to run its frames as separate jobs"
        )
    return arr


def _worker_device(device: str) -> str:
    """The device a job runs on: ``device`` itself, or for ``"auto"`` on a multi-GPU dask worker, one GPU.

    That GPU is ``worker index % GPU count``, so that a LocalCluster spreads its workers over the GPUs.
    """
    if device != "auto":
        return device
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return device
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n <= 1:
        return device
    try:
        index = int(worker.name)
    except (TypeError, ValueError):
        return device
    return f"cuda:{index % n}"


def _aux_value(entry: registry.TaskEntry, job: Job, shape: tuple[int, ...]) -> Any:
    """The task's second input for this job (``None`` when not given)."""
    aux = entry.aux
    if aux is None:
        return None
    value = job.aux.get(aux.name)
    if aux.kind == "value" or value is None:
        return value
    frame = job.frame if aux.per_image else None
    if aux.kind == "labels":  # mask and hint files are read with their own axes (not --axes)
        return read_hints(value, shape, frame, aux.name)
    mask = read_binary(value, shape, aux.name, frame)
    return ~mask if job.aux.get(f"invert_{aux.name}") else mask


def region_ranges(shape: tuple[int, ...], region: list[int | None]) -> tuple[range, range]:
    """The rows and columns ``--region`` ``[y0, y1, x0, x1]`` (slice bounds) picks of an image of ``shape``."""
    y0, y1, x0, x1 = region
    return range(shape[0])[slice(y0, y1)], range(shape[1])[slice(x0, x1)]


def crop_region(arr: Any, region: list[int | None], what: str) -> Any:
    """``arr[y0:y1, x0:x1]`` for ``--region``, refusing a region that leaves nothing or overruns the image.

    Raises
    ------
    ValueError
        With the image's size and the region asked for.
    """
    height, width = arr.shape[:2]
    y0, y1, x0, x1 = region
    rows, cols = region_ranges(arr.shape, region)
    spec = ",".join(f"{'' if a is None else a}:{'' if b is None else b}" for a, b in ((y0, y1), (x0, x1)))
    outside = any(
        b is not None and not -n <= b <= n for b, n in ((y0, height), (y1, height), (x0, width), (x1, width))
    )
    if outside or len(rows) == 0 or len(cols) == 0:
        raise ValueError(
            f"--region {spec} does not fit {what} of {height} x {width} pixels (rows 0:{height}, columns "
            f"0:{width}); give Y0:Y1,X0:X1 inside it"
        )
    return arr[slice(y0, y1), slice(x0, x1)]


def _job_inputs(job: Job) -> tuple[registry.TaskEntry, list[Any], dict[str, Any]]:
    """Read the job's inputs: its task's entry, positional inputs and keyword options."""
    entry = registry.get(job.task)
    opts = dict(job.options)
    opts["device"] = _worker_device(opts.get("device", "auto"))
    if job.threads:
        opts["threads"] = job.threads
    opts.setdefault("min_interval", 1.0)
    if entry.inputs.group:
        images: Any = [read_input(p, None, job.axes) for p in job.inputs]
        first = images[0]
    else:
        images = first = read_input(job.inputs[0], job.frame, job.axes)
    aux = None if entry.aux is None else _aux_value(entry, job, first.shape)
    if job.region is not None:
        name = Path(job.inputs[0]).name
        images = crop_region(images, job.region, name)
        if aux is not None and entry.aux is not None and entry.aux.kind != "value":
            aux = crop_region(aux, job.region, f"the {entry.aux.name} of {name}")
        box = entry.aux.box if entry.aux is not None else None
        if box is not None and opts.get(box) is not None:  # a box is given in the whole image's pixels
            rows, cols = region_ranges(first.shape, job.region)
            y0, x0, y1, x1 = opts[box]
            opts[box] = [y0 - rows.start, x0 - cols.start, y1 - rows.start, x1 - cols.start]
    inputs = [images] if entry.aux is None else [images, aux]
    return entry, inputs, opts


def _call_task(job: Job, callback: Any) -> Any:
    """Read the job's inputs and run its task; return the result."""
    from .. import api

    entry, inputs, opts = _job_inputs(job)
    return api.run(entry, *inputs, callback=callback, **opts)


def file_arrays(entry: registry.TaskEntry, outputs: dict[str, Any]) -> dict[str, Any]:
    """The arrays the CLI writes, by sidecar key, from a run's final outputs (labels as 0/255)."""
    import numpy as np

    arrays = {}
    for o in entry.files:
        count = len(outputs) if o.per_input else 1
        keys = [o.key.format(i=i) for i in range(count) if o.key.format(i=i) in outputs]
        for key in keys:
            value = np.asarray(outputs[key])
            if o.kind == "labels":
                value = ((value > 0) if o.foreground is None else (value == o.foreground)).astype(
                    np.uint8
                ) * 255
            arrays[key if o.per_input else (o.file_key or o.key)] = value
    return arrays


def _finish_job(job: Job, result: Any, outputs: dict[str, Any], t0: float, started: Any) -> dict[str, Any]:
    """Write a finished job's outputs and then its sidecar; its summary line's values."""
    from .._io import write_image

    arrays = file_arrays(registry.get(job.task), outputs)
    written = [str(write_image(path, arrays[key])) for key, path in job.outputs.items()]
    params = dict(result.params)
    seconds = time.perf_counter() - t0
    sidecar = {
        "task": job.task,
        "inputs": job.inputs,
        "frame": job.frame,
        **({"region": job.region} if job.region is not None else {}),
        "outputs": {k: Path(v).name for k, v in job.outputs.items()},
        "parameters": {**job.options, **job.aux},
        **run_record(params, job.options.get("seed")),
        "numerics": numerics_record(params),
        "result": result.record(),
        "run_params": params,
        **provenance("started", started),
        "seconds": round(seconds, 3),
        "request": job.request,
    }
    write_json(Path(job.sidecar), sidecar)
    return {
        "name": job.name,
        "label": job.label,
        "status": "done",
        "seconds": seconds,
        "steps_run": params.get("steps_run"),
        "stop_reason": params.get("stop_reason"),
        "loss": (params.get("final_losses") or {}).get("total"),
        "device": params.get("device"),
        "outputs": written,
    }


def _failed(job: Job, exc: BaseException, t0: float) -> dict[str, Any]:
    from ..core.memory import explain_error

    return {
        "name": job.name,
        "label": job.label,
        "status": "failed",
        "error": explain_error(exc),
        "seconds": time.perf_counter() - t0,
    }


def run_job(job: Job) -> dict[str, Any]:
    """Run one planned job: read its inputs, optimise, write its outputs and then its sidecar.

    Errors are returned (``status="failed"``, ``error``), not raised, so that a batch goes on;
    ``KeyboardInterrupt`` is raised. Works in-process and on dask workers.
    """
    import datetime as _dt

    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.perf_counter()
    try:
        progress = JobProgress(job.name, job.progress_every)
        result = _call_task(job, progress)
        return _finish_job(job, result, progress.outputs, t0, started)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # reported by name (out of memory: with advice); the batch goes on
        return _failed(job, exc, t0)


def run_frame_jobs(jobs: list[Job]) -> list[dict[str, Any]]:
    """Run the frame jobs of one stack together (:func:`~napari_doubledip.api.stream_frames`): side by side where they batch.

    Each frame's outputs and sidecar are written as :func:`run_job` writes them; a failure fails
    every frame of the call. Works in-process and on dask workers.
    """
    import datetime as _dt

    from .. import api
    from ..core.loop import run_to_end

    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.perf_counter()
    try:
        read = [_job_inputs(job) for job in jobs]
        entry, _inputs, opts = read[0]
        progress = [JobProgress(job.name, job.progress_every) for job in jobs]
        stream = api.stream_frames(
            entry, [inputs for _e, inputs, _o in read], batch_frames=jobs[0].batch_frames, **opts
        )
        results = run_to_end(stream, lambda placed: progress[placed[0]](placed[1]))  # type: ignore[arg-type]
        return [
            _finish_job(job, result, watch.outputs, t0, started)
            for job, result, watch in zip(jobs, results, progress, strict=True)
        ]
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        return [_failed(job, exc, t0) for job in jobs]
