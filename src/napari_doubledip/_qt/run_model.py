"""The state of one widget run, and reading inputs out of napari layers (no Qt widgets, no torch).

Everything here runs on the main thread: inputs are copied out of the layers before the
worker starts, and output layers are only touched from the worker's signals.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np

from ..core.memory import explain_error  # torch-free: advice shared with the CLI
from ..registry import Output, TaskEntry

__all__ = [
    "OUTPUT_TAG",
    "RESULT_KEY",
    "InputError",
    "OutputTarget",
    "RunFailed",
    "RunPlan",
    "RunState",
    "build_plan",
    "explain_error",
    "format_seconds",
    "frame_indices",
    "frame_shape",
    "hint_of",
    "private_outputs",
    "leading_shape",
    "read_frame",
    "read_hint",
    "run_frames",
    "shapes_box",
]

#: Metadata key that marks a layer as an output of a widget (task, source layer, output key).
OUTPUT_TAG = "doubledip_output"
#: Metadata key holding a finished run's parameters, final losses, device and time.
RESULT_KEY = "doubledip"


def format_seconds(seconds: float | None) -> str:
    """``m:ss`` for a duration in seconds (``?`` when unknown)."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def hint_of(entry: TaskEntry) -> Any:
    """The task's mask / hint input that a layer provides (``None``: none, or a plain value)."""
    aux = entry.aux
    return aux if aux is not None and aux.kind != "value" else None


class InputError(ValueError):
    """The layers chosen in a widget cannot be run; the message says what to change."""


def _base_data(layer: Any) -> Any:
    """The full-resolution data of a layer (the first level of a multiscale one)."""
    return layer.data[0] if getattr(layer, "multiscale", False) else layer.data


def leading_shape(layer: Any) -> tuple[int, ...]:
    """Shape of the dimensions before (Y, X) of an image layer (``()`` for a plain 2-D image)."""
    shape = tuple(int(s) for s in _base_data(layer).shape)
    spatial = shape[:-1] if layer.rgb else shape
    return spatial[:-2]


def frame_shape(layer: Any) -> tuple[int, ...]:
    """Shape of one (Y, X[, C]) frame of an image layer."""
    shape = tuple(int(s) for s in _base_data(layer).shape)
    return shape[-3:] if layer.rgb else shape[-2:]


def frame_indices(layer: Any, world_point: Sequence[float], all_frames: bool) -> list[tuple[int, ...]]:
    """Indices of the frames to process: the one shown at ``world_point``, or all of them."""
    lead = leading_shape(layer)
    if not lead:
        return [()]
    if all_frames:
        return [tuple(int(i) for i in idx) for idx in np.ndindex(*lead)]
    data_point = np.asarray(layer.world_to_data(world_point), dtype=float)[: len(lead)]
    idx = tuple(int(np.clip(np.round(p), 0, n - 1)) for p, n in zip(data_point, lead))
    return [idx]


def read_frame(layer: Any, index: tuple[int, ...]) -> np.ndarray:
    """A private copy of one (Y, X[, C]) frame of an image layer."""
    data = _base_data(layer)
    frame = data[index] if index else data
    return np.array(frame, copy=True)


def read_hint(
    layer: Any, index: tuple[int, ...], image_layer: Any, binary: bool, image_shape: tuple[int, ...]
) -> np.ndarray:
    """The (Y, X) hint of a Labels or Shapes layer for frame ``index`` of ``image_layer``.

    Labels must have the image's (Y, X) shape or its full spatial shape (one hint per frame);
    Shapes are rasterised onto the image's pixel grid.

    Raises
    ------
    InputError
        If the shapes do not match.
    """
    from napari.layers import Shapes

    yx = tuple(int(s) for s in image_shape[:2])
    spatial = leading_shape(image_layer) + yx
    if isinstance(layer, Shapes):
        if layer.ndim == 2:
            hint = layer.to_labels(labels_shape=yx)
        elif layer.ndim == len(spatial):
            hint = layer.to_labels(labels_shape=spatial)[index]
        else:
            raise InputError(
                f"Shapes layer {layer.name!r} is {layer.ndim}-D but image {image_layer.name!r} is "
                f"{len(spatial)}-D; draw the shapes in 2-D or on the image's stack"
            )
    else:
        data = _base_data(layer)
        shape = tuple(int(s) for s in data.shape)
        if shape == yx:
            hint = np.array(data, copy=True)
        elif shape == spatial:
            hint = np.array(data[index], copy=True)
        else:
            raise InputError(
                f"{layer.name!r} is {' x '.join(map(str, shape))} but image {image_layer.name!r} is "
                f"{' x '.join(map(str, yx))} pixels (Y x X); they must match"
            )
    hint = np.asarray(hint)
    return (hint != 0) if binary else hint


def shapes_box(layer: Any, image_layer: Any) -> list[float]:
    """The last rectangle of a Shapes layer as a box ``[y0, x0, y1, x1]`` in the image's pixels.

    The rectangle's corners are mapped through world coordinates onto ``image_layer``'s pixel
    grid; the box holds the pixels whose centres lie inside it (``y1``, ``x1`` excluded).

    Raises
    ------
    InputError
        If the layer holds no rectangle.
    """
    rectangles = [np.asarray(d) for d, kind in zip(layer.data, layer.shape_type) if kind == "rectangle"]
    if not rectangles:
        raise InputError(
            f"Shapes layer {layer.name!r} has no rectangle: draw one around the object with the "
            "rectangle tool (everything outside it is taken as background)"
        )
    corners = np.array(
        [image_layer.world_to_data(layer.data_to_world(v))[-2:] for v in rectangles[-1]], dtype=float
    )
    (y0, x0), (y1, x1) = corners.min(0), corners.max(0)
    return [
        float(np.ceil(y0 - 0.5)),
        float(np.ceil(x0 - 0.5)),
        float(np.floor(y1 + 0.5)) + 1.0,
        float(np.floor(x1 + 0.5)) + 1.0,
    ]


@dataclass
class RunPlan:
    """Private copies of everything a run needs, made on the main thread before it starts.

    Attributes
    ----------
    spec
        The task's registry entry.
    sources
        The input layers, in order.
    frames
        Frame index per run (``[()]`` for 2-D images).
    images
        Per frame: the image (single-input tasks) or the list of images.
    hints
        Per frame: the (Y, X) hint, or ``None``.
    options
        Keyword options of the stream function (``stop`` included).
    all_frames
        Whether the outputs are stacks filled frame by frame.
    live
        The queue new hints go to while the run goes on (``None``: the hints are fixed).
    hint_layer
        The layer the hints (or the box) come from.
    region
        The part of each frame the run is limited to (``None``: the whole frame); the images and
        hints above are already cropped to it.
    """

    spec: TaskEntry
    sources: list[Any]
    frames: list[tuple[int, ...]]
    images: list[Any]
    hints: list[np.ndarray | None]
    options: dict[str, Any]
    all_frames: bool
    live: Any = None
    hint_layer: Any = None
    region: Any = None

    def read_hint(self, position: int) -> np.ndarray:
        """A fresh copy of frame ``position``'s hint out of the hint layer, cropped to the region (live hints)."""
        index, image = self.frames[position], self.sources[0]
        hint = read_hint(self.hint_layer, index, image, False, frame_shape(image))
        return hint if self.region is None else self.region.crop(hint)

    def _args(self, position: int) -> list[Any]:
        args: list[Any] = [self.images[position]]
        if hint_of(self.spec) is not None:
            args.append(self.hints[position])
        return args

    def check(self, position: int = 0) -> None:
        """Check frame ``position``'s request cheaply, without building its task (:func:`~napari_doubledip.api.check_request`).

        For the GUI thread: bad inputs fail here, at once, with the message the task would give.
        """
        from .. import api

        api.check_request(self.spec, *self._args(position), **self.options)

    def stream_frames(self) -> Generator:
        """The api stream of every frame (:func:`~napari_doubledip.api.stream_frames`; builds, and so validates, their tasks: on the worker)."""
        from .. import api

        frames = [self._args(position) for position in range(len(self.frames))]
        return api.stream_frames(self.spec, frames, **self.options)


def build_plan(spec: TaskEntry, form: Any, world_point: Sequence[float], stop: threading.Event) -> RunPlan:
    """Copy the inputs out of the layers chosen in a task's form and check them.

    Parameters
    ----------
    spec
        The task's registry entry.
    form
        Its :class:`~napari_doubledip._qt.task_form.TaskForm` (inputs, hint, frames, options).
    world_point
        The viewer's current point (which frame of a stack is shown).
    stop
        The run's stop flag, passed to the loop.

    Returns
    -------
    The plan, holding private copies of the frames to run.

    Raises
    ------
    InputError
        With a message saying what to change.
    """
    hint = hint_of(spec)
    sources = form.inputs()
    if len(sources) < spec.inputs.min_images:
        if spec.inputs.group:
            raise InputError(
                f"Tick at least {spec.inputs.min_images} image layer(s) in the list (open images with "
                "File ▸ Open, or File ▸ Open Sample ▸ napari-doubledip)."
            )
        raise InputError("Choose an image layer (open one, or File ▸ Open Sample ▸ napari-doubledip).")
    if len({leading_shape(layer) for layer in sources}) > 1:
        raise InputError("The images are stacks of different lengths; choose images of one kind.")
    hint_layer = form.hint_picker.value if form.hint_picker is not None else None
    if hint is not None and hint.required and hint_layer is None:
        raise InputError(f"Choose a {hint.label.lower()} layer: {hint.help}")
    all_frames = bool(form.all_frames.value) and bool(leading_shape(sources[0]))
    frames = frame_indices(sources[0], world_point, all_frames)
    options = {**form.options(), "stop": stop}
    from napari.layers import Labels, Shapes

    from .region import choose_region

    region_picker = getattr(form, "region", None)  # a task taking a group of images has none
    region = choose_region(None if region_picker is None else region_picker.value, sources[0])
    if hint is not None and hint.box is not None and isinstance(hint_layer, Shapes):
        box = shapes_box(hint_layer, sources[0])  # a box, not a hint image
        options[hint.box] = box if region is None else region.box_inside(box)
        hint_layer = None
    live = None
    if hint is not None and hint.live is not None and isinstance(hint_layer, Labels) and len(frames) == 1:
        import queue

        live = options[hint.live] = queue.Queue()
    images: list[Any] = []
    hints: list[np.ndarray | None] = []
    for index in frames:
        frame = [read_frame(layer, index) for layer in sources]
        full_shape = frame[0].shape
        if region is not None:
            frame = [region.crop(image) for image in frame]
        images.append(frame if spec.inputs.group else frame[0])
        if hint_layer is None:
            hints.append(None)
        else:
            mark = read_hint(hint_layer, index, sources[0], hint.binary, full_shape)
            hints.append(mark if region is None else region.crop(mark))
    if options["device"] in ("cpu", "auto"):
        from ..core.devices import cpu_count

        options["threads"] = max(1, cpu_count() - 1)
    return RunPlan(spec, sources, frames, images, hints, options, all_frames, live, hint_layer, region)


class RunFailed(Exception):
    """A run raised ``original`` (wrapped: the thread worker would swallow a bare RuntimeError)."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(f"{type(original).__name__}: {original}")
        self.original = original


def private_outputs(snapshot: Any) -> Any:
    """The snapshot with writable copies of its outputs, made on the worker (not on the GUI thread).

    The output layers take these arrays as their data as they are.
    """
    outputs = {key: np.array(value, copy=True) for key, value in snapshot.outputs.items()}
    return replace(snapshot, outputs=MappingProxyType(outputs))


def run_frames(plan: RunPlan, stop: threading.Event) -> Generator[tuple[int, Any], None, list]:
    """Worker body: build the frames' tasks and run them, yielding ``(frame position, snapshot)``.

    Frames run one after the other, or side by side on one grouped net where they batch (on a
    GPU, see :func:`~napari_doubledip.api.stream_frames`). Building a task converts its inputs
    and checks them fully (the GUI thread only made the cheap checks of :meth:`RunPlan.check`):
    what fails here reaches the widget as an error.

    Returns the list of the frames' results (fewer than the frames when stopped).

    Raises
    ------
    RunFailed
        Wrapping whatever the engine raised (superqt's worker takes a bare ``RuntimeError``,
        such as torch's out-of-memory error, for a deleted worker and ends without a signal).
    """
    try:
        stream = plan.stream_frames()
        while True:
            try:
                position, snapshot = next(stream)
            except StopIteration as end:
                return list(end.value)
            yield position, private_outputs(snapshot)
    except Exception as exc:
        raise RunFailed(exc) from exc


@dataclass
class OutputTarget:
    """One output layer of a run and the array behind it.

    Attributes
    ----------
    layer
        The layer (``None`` while it is still to be created, or once the user removed it).
    pending
        The layer is still to be created (creating napari layers is slow: one per event-loop turn).
    replaces
        A layer of the same output but another kind or dimensions, replaced on creation.
    created
        This run created the layer.
    latest
        The layer data of the latest snapshot (what a layer created late starts with).
    stale
        ``latest`` is not in the layer yet (the widget sets layer data one layer per event-loop turn).
    updated
        The layer has received a snapshot's data.
    """

    spec: Output
    key: str
    layer: Any
    source: Any
    pending: bool = False
    replaces: Any = None
    created: bool = False
    buffer: np.ndarray | None = None
    latest: np.ndarray | None = None
    stale: bool = False
    updated: bool = False

    def frame_array(self, plan: RunPlan, position: int, value: np.ndarray) -> np.ndarray:
        """The layer data after putting ``value`` (frame ``position``) in place.

        A single frame is used as it is when writable (:func:`run_frames` copies the outputs on
        the worker), else copied.
        """
        value = np.asarray(value)
        if not plan.all_frames or not plan.frames[position]:
            return value if value.flags.writeable else np.array(value, copy=True)
        lead = leading_shape(self.source)
        if self.buffer is None or self.buffer.shape != lead + value.shape or self.buffer.dtype != value.dtype:
            self.buffer = np.zeros(lead + value.shape, value.dtype)
        self.buffer[plan.frames[position]] = value
        return self.buffer


@dataclass
class RunState:
    """What a widget knows about its current run."""

    plan: RunPlan
    stop: threading.Event
    device: str
    targets: list[OutputTarget] = field(default_factory=list)
    updates: int = 0
    #: Whether the status line has said what to expect of this run (a long run says it once).
    expectation_said: bool = False
    last_snapshot: Any = None
    last_position: int = 0
    results: list = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    @property
    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self.started

    def record(self) -> dict[str, Any]:
        """What the output layers record of the finished run.

        The last frame's parameters, the sources, device, time and final losses; for stacks the
        frames done and each frame's parameters.
        """
        last = self.results[-1]
        info: dict[str, Any] = dict(last.params or {})
        info.update(
            {
                "sources": [layer.name for layer in self.plan.sources],
                "device": info.get("device", self.device),
                "elapsed": round(self.elapsed, 3),
                "final_losses": info.get("final_losses", dict(self.last_snapshot.losses)),
            }
        )
        if self.plan.frames[0]:  # a stack: which frames were processed
            info["frames"] = [list(index) for index in self.plan.frames[: len(self.results)]]
        if self.plan.region is not None:
            info["region"] = self.plan.region.as_list()
        if len(self.plan.frames) > 1:
            info["per_frame"] = [dict(r.params or {}) for r in self.results]
        return info

    def progress_text(self, snapshot: Any) -> str:
        """The progress bar's text: frame, step, time and the remaining time over all frames."""
        n = len(self.plan.frames)
        frame = f"frame {self.last_position + 1}/{n} · " if n > 1 else ""
        cap = f"/{snapshot.total}" if snapshot.total else ""
        eta = snapshot.eta
        if eta is not None and n > 1:
            eta += (n - self.last_position - 1) * snapshot.elapsed / max(snapshot.progress, 1e-6)
        return f"{frame}step {snapshot.step}{cap} · {format_seconds(snapshot.elapsed)} · ETA {format_seconds(eta)}"

    def progress(self) -> float:
        """Overall fraction done, over all frames."""
        snap = self.last_snapshot
        if snap is None:
            return 0.0
        n = len(self.plan.frames)
        return min(1.0, (self.last_position + snap.progress) / n)
