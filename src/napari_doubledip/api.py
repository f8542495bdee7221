"""Headless Python API: blocking functions and streaming generators over the one engine loop.

Every registered task comes twice: ``dd.denoise(...)`` runs to the end and returns a result;
``dd.denoise_stream(...)`` is a generator of :class:`~napari_doubledip.core.loop.Snapshot`
whose return value is that result (the napari widgets and the CLI use this form).

The functions are built from the task registry (:mod:`napari_doubledip.registry`): their
signatures list the task's inputs, the run options and every option of the task's options
dataclass, with its default and type; :func:`run` and :func:`stream` take a task by name.
"""

from __future__ import annotations

import dataclasses
import inspect
import threading
from collections.abc import Callable, Generator
from typing import Any

import numpy as np

from . import registry
from .core.conversion import image_list
from .core.loop import Snapshot, optimise, run_to_end
from .core.options import check_number
from .core.tasks.base import Result, Task
from .stack_runs import stream_frames

__all__ = [
    "check_request",
    "check_run_options",
    "function",
    "run",
    "run_task",
    "stream",
    "stream_frames",
    "stream_task",
]

#: Keyword options that belong to the optimisation loop rather than to a task.
LOOP_OPTIONS = frozenset(inspect.signature(optimise).parameters) - {"task"}

#: The run options every task function takes (keyword-only), with their defaults.
RUN_OPTIONS: dict[str, tuple[Any, str]] = {
    "steps": (None, "int | None"),
    "max_seconds": (None, "float | None"),
    "seed": (0, "int"),
    "device": ("auto", "str"),
    "early_stop": (True, "bool"),
}

_RUN_DOC = """steps, max_seconds
    Caps on optimisation steps and wall time (neither: the task's default number of steps).
seed
    Seeds everything random: same seed, same device, same result.
device
    ``"auto"`` (CUDA, then Apple MPS, then CPU) or a torch device string.
early_stop
    Stop once the outputs stop settling (or at the task's own stopping rule)."""


def _entry(task: str | registry.TaskEntry) -> registry.TaskEntry:
    return registry.get(task) if isinstance(task, str) else task


#: Accepted seeds (the nets' seeds are derived from it and must stay within torch's range).
MAX_SEED = 2**32 - 1


def _check_whole(
    name: str, value: Any, minimum: int, maximum: int | None = None, allow_none: bool = False
) -> None:
    """Raise naming ``name`` unless ``value`` is a whole number in [minimum, maximum] (or ``None``)."""
    if value is None and allow_none:
        return
    accepted = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
    accepted += ", a whole number" + (" (or None)" if allow_none else "")
    try:
        check_number(name, value, whole=True)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name} must be {accepted}, got {value!r} ({type(value).__name__})") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be {accepted}, got {value!r}")


def _check_real(
    name: str,
    value: Any,
    *,
    above: float | None = None,
    at_least: float | None = None,
    below: float | None = None,
    allow_none: bool = False,
) -> None:
    """Raise naming ``name`` unless ``value`` is a finite number in the given range (or ``None``)."""
    if value is None and allow_none:
        return
    bounds = [f"> {above}"] if above is not None else [f">= {at_least}"] if at_least is not None else []
    bounds += [f"< {below}"] if below is not None else []
    accepted = " and ".join(bounds) + ", a finite number" + (" (or None)" if allow_none else "")
    try:
        check_number(name, value)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name} must be {accepted}, got {value!r} ({type(value).__name__})") from None
    if (
        (above is not None and not value > above)
        or (at_least is not None and not value >= at_least)
        or (below is not None and not value < below)
    ):
        raise ValueError(f"{name} must be {accepted}, got {value!r}")


def check_run_options(
    steps: Any = None, max_seconds: Any = None, seed: Any = 0, early_stop: Any = True, **loop: Any
) -> None:
    """Validate the run and loop options up front, with messages that name the argument.

    Raises
    ------
    TypeError
        A value of the wrong type (``steps="3"``, ``seed=None``).
    ValueError
        A value out of range or not finite (``seed=2**70``, ``max_seconds=nan``, ``lr``-like NaN).
    """
    _check_whole("steps", steps, 1, allow_none=True)
    _check_real("max_seconds", max_seconds, above=0, allow_none=True)
    _check_whole("seed", seed, 0, MAX_SEED)
    if not isinstance(early_stop, bool | np.bool_):
        raise TypeError(f"early_stop must be True or False, got {early_stop!r}")
    if "ema" in loop:
        _check_real("ema", loop["ema"], at_least=0, below=1)
    if "min_interval" in loop:
        _check_real("min_interval", loop["min_interval"], at_least=0)
    if "snapshot_every" in loop:
        _check_whole("snapshot_every", loop["snapshot_every"], 1)
    if "threads" in loop:
        _check_whole("threads", loop["threads"], 1, allow_none=True)
    if "es_window" in loop:
        _check_whole("es_window", loop["es_window"], 2)
    if "es_patience" in loop:
        _check_whole("es_patience", loop["es_patience"], 1)
    if loop.get("precision", "auto") not in ("auto", "float32", "bfloat16"):
        raise ValueError(f"precision must be 'auto', 'float32' or 'bfloat16', got {loop['precision']!r}")
    stop = loop.get("stop")
    if stop is not None and not callable(getattr(stop, "is_set", None)):
        raise TypeError(
            f"stop must have an is_set() method (e.g. a threading.Event), got {type(stop).__name__}"
        )


def build_task(task: str | registry.TaskEntry, *inputs: Any, **options: Any) -> Task:
    """The engine task of a registered task for ``inputs`` and task ``options`` (validated).

    A task of a group of images takes a list of images; a single ``(Y, X[, C])`` array is one
    image, and an array that can only be a stack of images is refused with a message saying
    to pass a list (:func:`~napari_doubledip.core.conversion.image_list`).
    """
    entry = _entry(task)
    return entry.task_class(*_task_inputs(entry, inputs), options=entry.options.build(**options))


def _task_inputs(entry: registry.TaskEntry, inputs: tuple[Any, ...]) -> tuple[Any, ...]:
    """``inputs`` with a group task's images as a list (:func:`~napari_doubledip.core.conversion.image_list`)."""
    if entry.inputs.group and inputs:
        return (image_list(inputs[0], name="images"), *inputs[1:])
    return inputs


def _checked_options(
    options: dict[str, Any], steps: Any, max_seconds: Any, seed: Any, early_stop: Any
) -> tuple[bool, dict[str, Any], dict[str, Any]]:
    """Validate the run and loop options (:func:`check_run_options`) and split ``options``.

    Returns
    -------
    check_memory, loop, own
        Whether to check the memory, the loop's options and the task's own.
    """
    options = dict(options)
    check_memory = options.pop("check_memory", True)
    loop = {k: v for k, v in options.items() if k in LOOP_OPTIONS}
    own = {k: v for k, v in options.items() if k not in LOOP_OPTIONS}
    check_run_options(steps=steps, max_seconds=max_seconds, seed=seed, early_stop=early_stop, **loop)
    return check_memory, loop, own


def check_request(
    task: str | registry.TaskEntry,
    *inputs: Any,
    steps: int | None = None,
    max_seconds: float | None = None,
    seed: int = 0,
    device: str = "auto",
    early_stop: bool = True,
    **options: Any,
) -> None:
    """Check a request of :func:`stream` without building its task: cheap, for the caller's thread.

    The run and loop options, the task's options, its inputs' shapes, dtypes, sizes and finite
    values and its own rules on them (the task's ``check_inputs``: an empty mask, hints of
    another size, too few images, ...), and the memory the smallest run of this size needs.
    The images are not converted and nothing is prepared: the napari widgets call this on
    the GUI thread and :func:`stream` (which checks everything again, and more) on their
    worker. A request that passes may still fail in :func:`stream` on what only the full
    preparation finds (the memory of the whole run, a mark's anchor from the images' contents).

    Raises
    ------
    TypeError, ValueError
        With the message :func:`stream` would give.
    MemoryEstimateError
        When even the smallest run of this size will not fit (``check_memory=False`` skips it).
    """
    check_memory, _loop, own = _checked_options(options, steps, max_seconds, seed, early_stop)
    entry = _entry(task)
    inputs = _task_inputs(entry, inputs)
    entry.task_class.check_inputs(*inputs, options=entry.options.build(**own))
    if check_memory:
        _check_memory_lower_bound(entry, inputs, own, device)


def stream(
    task: str | registry.TaskEntry,
    *inputs: Any,
    steps: int | None = None,
    max_seconds: float | None = None,
    seed: int = 0,
    device: str = "auto",
    early_stop: bool = True,
    **options: Any,
) -> Generator[Snapshot, None, Result]:
    """Snapshots of a run of the registered ``task`` on ``inputs``; returns its result.

    ``options`` holds the task's options and the loop's (``ema``, ``min_interval``, ``stop``,
    ``threads``, ``precision``, ...). Every number is checked before anything is built, and the
    memory the run needs is estimated (:mod:`~napari_doubledip.core.memory`) and compared with
    what the device has free: a run that will not fit fails at once with
    :class:`~napari_doubledip.core.memory.MemoryEstimateError` (``check_memory=False`` skips
    that check).
    """
    check_memory, loop, own = _checked_options(options, steps, max_seconds, seed, early_stop)
    entry = _entry(task)
    if check_memory:  # a lower bound first, before the task prepares anything (guides, priors)
        _check_memory_lower_bound(entry, inputs, own, device)
    engine = build_task(entry, *inputs, **own)
    if check_memory:
        from .core import memory
        from .core.devices import resolve_device

        needed = memory.estimate_task_bytes(engine)
        if needed is not None:
            what = f"{entry.name} of {_describe_inputs(engine)}"
            memory.check_memory(needed, resolve_device(device), what=what)
    return optimise(
        engine, steps=steps, max_seconds=max_seconds, seed=seed, device=device, early_stop=early_stop, **loop
    )


def _check_memory_lower_bound(
    entry: registry.TaskEntry, inputs: tuple[Any, ...], own: dict[str, Any], device: Any
) -> None:
    """Refuse a run whose smallest possible need will not fit.

    The smallest need is each of its nets once, on its first image's size. Does nothing when
    the inputs or options are not understood here (the task's own checks then say what is wrong).
    """
    from .core import memory
    from .core.devices import resolve_device
    from .core.network import resolve_net_config

    try:
        first = inputs[0]
        if entry.inputs.group and isinstance(first, list | tuple):
            first = first[0]
        shape = np.shape(first)
        options = entry.options.build(**own)
        nets = [
            (resolve_net_config(getattr(options, info.name)), 1) for info in entry.options.info() if info.net
        ]
    except Exception:  # the task's own validation explains it
        return
    if len(shape) < 2 or not nets:
        return
    channels = shape[2] if len(shape) == 3 else 1
    needed = memory.estimate_run_bytes(nets, shape[:2], images=1, channels=channels)
    memory.check_memory(
        needed, resolve_device(device), what=f"{entry.name} of a {shape[0]} x {shape[1]} image"
    )


def _describe_inputs(task: Task) -> str:
    """``"a 3000 x 3000 image"`` or ``"3 images of 512 x 512"`` (for messages)."""
    layouts = list(getattr(task, "layouts", None) or [task.layout])  # type: ignore[attr-defined]
    y, x = layouts[0].spatial_shape
    return f"a {y} x {x} image" if len(layouts) == 1 else f"{len(layouts)} images of {y} x {x}"


def run(
    task: str | registry.TaskEntry,
    *inputs: Any,
    callback: Callable[[Snapshot], Any] | None = None,
    **options: Any,
) -> Result:
    """Run the registered ``task`` on ``inputs`` to the end and return its result.

    ``callback(snapshot)`` returning ``False`` stops it early. Options as for :func:`stream`.
    """
    stop = options.pop("stop", None) or threading.Event()
    return run_to_end(stream(task, *inputs, stop=stop, **options), callback, stop)


def stream_task(task: Task, **loop_options: Any) -> Generator[Snapshot, None, Result]:
    """Snapshots of an optimisation of ``task`` (see :func:`~napari_doubledip.core.loop.optimise`)."""
    return optimise(task, **loop_options)


def run_task(task: Task, *, callback: Callable[[Snapshot], Any] | None = None, **loop_options: Any) -> Result:
    """Run ``task`` to the end; ``callback(snapshot)`` returning ``False`` stops it early."""
    stop = loop_options.pop("stop", None) or threading.Event()
    return run_to_end(optimise(task, stop=stop, **loop_options), callback, stop)


# --------------------------------------------------------------------------------------------
# The task functions, built from the registry


def signature(entry: registry.TaskEntry, blocking: bool) -> inspect.Signature:
    """The signature of a task's API function (``blocking``) or of its stream."""
    P = inspect.Parameter
    main = "images" if entry.inputs.group else "image"
    main_type = "np.ndarray | list[np.ndarray]" if entry.inputs.group else "np.ndarray"
    params = [P(main, P.POSITIONAL_OR_KEYWORD, annotation=main_type)]
    if entry.aux is not None:
        aux = entry.aux
        if aux.required:
            params.append(
                P(aux.name, P.POSITIONAL_OR_KEYWORD, annotation=aux.annotation.replace(" | None", ""))
            )
        else:
            params.append(P(aux.name, P.POSITIONAL_OR_KEYWORD, default=None, annotation=aux.annotation))
    for name, (default, annotation) in RUN_OPTIONS.items():
        params.append(P(name, P.KEYWORD_ONLY, default=default, annotation=annotation))
    if blocking:
        params.append(
            P("callback", P.KEYWORD_ONLY, default=None, annotation="Callable[[Snapshot], Any] | None")
        )
    fields = {f.name: f for f in dataclasses.fields(entry.options)}
    for info in entry.options.info():
        params.append(P(info.name, P.KEYWORD_ONLY, default=info.default, annotation=fields[info.name].type))
    params.append(P("advanced", P.VAR_KEYWORD, annotation="Any"))
    result = entry.result
    ret = result if blocking else f"Generator[Snapshot, None, {result}]"
    return inspect.Signature(params, return_annotation=ret)


def _docstring(entry: registry.TaskEntry, blocking: bool) -> str:
    if not blocking:
        keys = ", ".join(f'"{o.key}"' for o in entry.outputs)
        return (
            f"Streaming form of :func:`{entry.api}`: yields snapshots (output keys {keys}), returns the result.\n\n"
            f"Same parameters as :func:`{entry.api}` but ``callback``."
        )
    options = "\n".join(f"{o.name}\n    {o.help[:1].upper() + o.help[1:]}." for o in entry.options.info())
    indent = "    "
    body = "\n".join(
        [
            entry.summary,
            "",
            "Parameters",
            "----------",
            entry.doc,
            _RUN_DOC,
            "callback\n    Called with each :class:`Snapshot`; returning ``False`` stops the run.",
            options,
            "**advanced\n    Loop options (``ema``, ``min_interval``, ``snapshot_every``, ``threads``, "
            "``precision``, ``stop``, ...); ``check_memory=False`` skips the memory check.",
            "",
            "Returns",
            "-------",
            f"{entry.result}\n    The outputs ({', '.join(o.key for o in entry.outputs)}), ``.history``, ``.params``.",
        ]
    )
    return "\n".join(indent + line if line and i else line for i, line in enumerate(body.splitlines()))


def function(task: str | registry.TaskEntry, blocking: bool = True) -> Callable[..., Any]:
    """The API function of a registered task (``blocking=False``: its stream)."""
    entry = _entry(task)
    sig = signature(entry, blocking)
    main = next(iter(sig.parameters))
    aux = entry.aux.name if entry.aux is not None else None

    def call(*args: Any, **kwargs: Any) -> Any:
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        advanced = values.pop("advanced")
        inputs = [values.pop(main)] + ([values.pop(aux)] if aux else [])
        if blocking:
            return run(entry, *inputs, **values, **advanced)
        return stream(entry, *inputs, **values, **advanced)

    call.__name__ = call.__qualname__ = entry.api if blocking else entry.stream
    call.__module__ = __name__
    call.__doc__ = _docstring(entry, blocking)
    call.__signature__ = sig  # type: ignore[attr-defined]
    call.__annotations__ = {name: p.annotation for name, p in sig.parameters.items()}
    call.__annotations__["return"] = sig.return_annotation
    return call


def function_names() -> list[str]:
    """Names of every task's API function and stream."""
    return [name for entry in registry.entries() for name in (entry.api, entry.stream)]


for _entry_ in registry.entries():
    globals()[_entry_.api] = function(_entry_)
    globals()[_entry_.stream] = function(_entry_, blocking=False)
    __all__ += [_entry_.api, _entry_.stream]
__all__.sort()
del _entry_


def __getattr__(name: str) -> Any:
    """The functions of tasks registered after this module was imported."""
    try:
        entry = registry.get(name)
    except KeyError:
        entry = None
    if entry is None or name not in (entry.api, entry.stream):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return function(entry, blocking=name == entry.api)
