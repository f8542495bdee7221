"""The task registry: one :class:`TaskEntry` per task; the API, CLI, widgets and demos are built from it.

Each module of this package (but this one) describes one built-in task with a module-level
``ENTRY``: its engine class (imported only when a run starts, so this package stays free of
torch and Qt), its inputs, its outputs, its options dataclass, its napari sample and its demo.
Other tasks join with :func:`register`.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..core.options import OptionInfo, TaskOptions

__all__ = [
    "SAMPLE_SIZE",
    "Aux",
    "Demo",
    "DemoSample",
    "Inputs",
    "Output",
    "Sample",
    "TaskEntry",
    "entries",
    "get",
    "register",
    "registered",
    "unregister",
]

#: Height and width of the napari sample images (small enough for a CPU run of a minute or two).
SAMPLE_SIZE = 128

LayerData = tuple[Any, dict[str, Any], str]


@dataclass(frozen=True)
class Inputs:
    """The task's images: one image, or an ordered group of ``min_images`` or more."""

    group: bool = False
    min_images: int = 1


@dataclass(frozen=True)
class Aux:
    """A second input beside the image(s): a mask, a hint label image, or a value.

    Attributes
    ----------
    name
        API keyword (second positional argument), CLI flag (``--name``) and form label.
    kind
        ``"mask"`` (read as ``!= 0``), ``"labels"`` (label values kept) or ``"value"`` (no layer;
        the CLI parses it with ``parse``).
    required
        Whether the task needs it.
    layer_types
        napari layer types the widget offers (``"labels"``, ``"shapes"``).
    help
        Form tooltip: what the values mean.
    cli_help
        CLI help text.
    per_image
        CLI: a file for all inputs, or a folder/glob of files matched to each input by name.
    invertible
        CLI: add ``--invert-<name>`` (nonzero pixels are the other class).
    parse
        CLI text -> API value (``kind="value"``).
    annotation
        Type of the API argument.
    box
        Name of a task option holding a rectangle ``(y0, x0, y1, x1)``: the widget's picker also
        takes a Shapes layer and passes its rectangle there; the CLI offers ``--<box>
        Y0,X0,Y1,X1`` (the API takes the option as it is).
    live
        Name of a task option taking a ``queue.Queue``: while a run goes on, the widget puts a
        copy of the hint layer there each time it is painted (live re-hinting).
    """

    name: str
    kind: str
    required: bool = False
    layer_types: tuple[str, ...] = ("labels",)
    help: str = ""
    cli_help: str = ""
    per_image: bool = False
    invertible: bool = False
    parse: Callable[[str], Any] | None = None
    annotation: str = "np.ndarray | None"
    box: str | None = None
    live: str | None = None

    @property
    def label(self) -> str:
        """The form label (``"Mask"``)."""
        return self.name.capitalize()

    @property
    def binary(self) -> bool:
        """Whether the widget passes ``layer != 0``."""
        return self.kind == "mask"


@dataclass(frozen=True)
class Output:
    """One output of a task: a key of ``Snapshot.outputs``, its napari layer and its CLI file.

    Attributes
    ----------
    key
        Key in :attr:`Snapshot.outputs`; ``"{i}"`` in it makes one output per input image.
    suffix
        The layer is called ``"<input name> · <suffix>"``.
    kind
        ``"image"`` (the input's range), ``"mask"`` (float in [0, 1]), ``"labels"`` (integers;
        the CLI writes ``255`` where nonzero) or ``"rgba"`` (float ``(Y, X, 4)`` in [0, 1]: a
        colour with its own opacity, shown over the layers below it).
    colormap, visible
        Colormap of gray images and masks; whether the layer is shown when created.
    file
        CLI file name after the job's name (or, per input, the input's stem); ``None``: not written.
    file_key
        Key of the file in the sidecar's ``outputs`` (default: ``key``).
    tiff
        Always write a TIFF (float maps), else the input's own format.
    png
        Always write a PNG (an ``"rgba"`` output keeps its alpha; JPEG has none).
    foreground
        ``kind="labels"``: the label value the CLI writes as 255 (``None``: any nonzero value).
    """

    key: str
    suffix: str
    kind: str = "image"
    colormap: str = "gray"
    visible: bool = True
    file: str | None = ""
    file_key: str | None = None
    tiff: bool = False
    png: bool = False
    foreground: int | None = None

    @property
    def per_input(self) -> bool:
        """Whether there is one such output per input image."""
        return "{i}" in self.key


@dataclass(frozen=True)
class Sample:
    """The napari sample of a task (File > Open Sample): its key, menu name and layers."""

    key: str
    display_name: str
    layers: Callable[[int], list[LayerData]]


@dataclass(frozen=True)
class DemoSample:
    """Inputs, ground truth and positional API arguments of one demo run."""

    inputs: dict[str, Any]
    truth: dict[str, Any]
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Demo:
    """The headless demo of a task.

    Attributes
    ----------
    make
        ``make(size)``: the sample of that size.
    score
        ``score(sample, result)``: (arrays to write, metrics, lines to print).
    tiff
        Keys of the arrays written as TIFF (float maps), the others as PNG.
    display
        Scale of label arrays in the written PNGs (e.g. hints 0/1/2 -> 0/127/254).
    """

    make: Callable[[int], DemoSample]
    score: Callable[[DemoSample, Any], tuple[dict[str, Any], dict[str, float], list[str]]]
    tiff: tuple[str, ...] = ()
    display: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskEntry:
    """Everything the faces know of a task.

    Attributes
    ----------
    name
        Short name: CLI subcommand, output-layer tag, demo name (``"denoise"``).
    title
        Widget display name (``"Denoise"``).
    api
        Name of the API function (``"remove_watermark"``; ``"<api>_stream"`` is its stream).
    task
        ``"module:Class"`` of the engine :class:`~napari_doubledip.core.tasks.base.Task`.
    options
        The options dataclass.
    help
        A few words for the CLI's list of subcommands.
    description
        One or two sentences: the widget's header.
    inputs, aux, outputs
        What it takes and what it gives.
    sample, demo
        Its napari sample and its headless demo.
    menu
        napari menu of the widget (``"napari/layers/filter"``).
    summary, doc
        One line of the API docstring, and its Parameters/Returns text.
    example
        A CLI example line (``--help`` lists them).
    order
        Place among the tasks (CLI subcommands, demo choices).
    result
        Name of the result class (the API functions' return annotation).
    steps
        The engine class's ``default_steps``, given here so that reading it imports nothing
        (``None``: read from the class).
    """

    name: str
    title: str
    api: str
    task: str
    options: type[TaskOptions]
    help: str
    description: str
    outputs: tuple[Output, ...]
    inputs: Inputs = Inputs()
    aux: Aux | None = None
    sample: Sample | None = None
    demo: Demo | None = None
    menu: str = "napari/layers/filter"
    summary: str = ""
    doc: str = ""
    example: str = ""
    order: int = 100
    result: str = "Result"
    steps: int | None = None

    @property
    def task_class(self) -> type[Any]:
        """The engine class (imports it, and torch)."""
        module, _, attr = self.task.partition(":")
        return getattr(importlib.import_module(module), attr)

    @property
    def default_steps(self) -> int:
        """Steps run when neither ``steps`` nor ``max_seconds`` is given (the engine class's).

        Read from ``steps`` when the entry gives it (no import: the widget's form needs it when a
        dock opens, and importing the engine imports torch, 1-3 s), else from the engine class.
        """
        return int(self.steps) if self.steps is not None else int(self.task_class.default_steps)

    @property
    def default_net(self) -> str:
        """The generator preset used by default."""
        return next(o.default for o in self.options.info() if o.name == "net")

    @property
    def shown_options(self) -> tuple[OptionInfo, ...]:
        """The options offered by the CLI and the widget's form."""
        return tuple(o for o in self.options.info() if o.shown)

    @property
    def widget_class(self) -> str:
        """Name of the dock-widget class in :mod:`napari_doubledip._qt.widgets`."""
        return "".join(part.capitalize() for part in self.name.split("_")) + "Widget"

    @property
    def stream(self) -> str:
        """Name of the streaming API function."""
        return f"{self.api}_stream"

    @property
    def files(self) -> tuple[Output, ...]:
        """The outputs the CLI writes."""
        return tuple(o for o in self.outputs if o.file is not None)


_ENTRIES: dict[str, TaskEntry] = {}
_DISCOVERED = False


def _discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    found = []
    for module in pkgutil.iter_modules(__path__):
        entry = getattr(importlib.import_module(f"{__name__}.{module.name}"), "ENTRY", None)
        if isinstance(entry, TaskEntry):
            found.append(entry)
    for entry in sorted(found, key=lambda e: (e.order, e.name)):
        _ENTRIES.setdefault(entry.name, entry)


def register(entry: TaskEntry) -> TaskEntry:
    """Add a task; its API functions, CLI subcommand and widget class exist from then on."""
    _discover()
    if entry.name in _ENTRIES and _ENTRIES[entry.name] is not entry:
        raise ValueError(f"a task named {entry.name!r} is already registered")
    _ENTRIES[entry.name] = entry
    return entry


def unregister(name: str) -> None:
    """Remove a task added with :func:`register`."""
    _ENTRIES.pop(name, None)


@contextmanager
def registered(entry: TaskEntry) -> Iterator[TaskEntry]:
    """Register ``entry`` for the duration of a ``with`` block (tests)."""
    register(entry)
    try:
        yield entry
    finally:
        unregister(entry.name)


def entries() -> tuple[TaskEntry, ...]:
    """Every task, built-ins first in their documented order."""
    _discover()
    return tuple(_ENTRIES.values())


def get(name: str) -> TaskEntry:
    """The task called ``name`` (its CLI name, or its API function's name).

    Raises
    ------
    KeyError
        For an unknown task.
    """
    _discover()
    if name in _ENTRIES:
        return _ENTRIES[name]
    for entry in _ENTRIES.values():
        if name in (entry.api, entry.stream):
            return entry
    raise KeyError(f"unknown task {name!r}; choose one of {sorted(_ENTRIES)}")
