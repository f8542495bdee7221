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

from . import registry
from .core.loop import Snapshot, optimise, run_to_end
from .core.tasks.base import Result, Task

__all__ = ["function", "run", "run_task", "stream", "stream_task"]

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


def build_task(task: str | registry.TaskEntry, *inputs: Any, **options: Any) -> Task:
    """The engine task of a registered task for ``inputs`` and task ``options`` (validated)."""
    entry = _entry(task)
    return entry.task_class(*inputs, options=entry.options.build(**options))


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
    ``threads``, ``precision``, ...).
    """
    loop = {k: v for k, v in options.items() if k in LOOP_OPTIONS}
    own = {k: v for k, v in options.items() if k not in LOOP_OPTIONS}
    engine = build_task(task, *inputs, **own)
    return optimise(
        engine, steps=steps, max_seconds=max_seconds, seed=seed, device=device, early_stop=early_stop, **loop
    )


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
            "``precision``, ``stop``, ...).",
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
