"""Declarative descriptions of the task widgets (no Qt, no torch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["HintSpec", "OutputSpec", "ParamSpec", "TaskSpec"]


@dataclass(frozen=True)
class OutputSpec:
    """One output layer of a task.

    Attributes
    ----------
    key
        Key in :attr:`Snapshot.outputs`; ``"{i}"`` in it makes one output per input image
        (``"clean_{i}"``), named after and placed like that input.
    suffix
        The layer is called ``"<input name> · <suffix>"``.
    kind
        ``"image"`` (the input's range and contrast), ``"mask"`` (float in [0, 1], an Image
        layer) or ``"labels"`` (integers, a Labels layer).
    colormap
        Colormap of gray ``"image"`` and ``"mask"`` outputs.
    visible
        Whether the layer is shown when created.
    """

    key: str
    suffix: str
    kind: str = "image"
    colormap: str = "gray"
    visible: bool = True

    @property
    def per_input(self) -> bool:
        """Whether there is one such output per input image."""
        return "{i}" in self.key


@dataclass(frozen=True)
class HintSpec:
    """The optional or required mask / hint layer of a task.

    Attributes
    ----------
    label
        Label in the form ("Mask", "Hints").
    layer_types
        Layer types accepted: ``"labels"`` and/or ``"shapes"`` (Shapes are rasterised).
    required
        Whether the task needs it.
    binary
        Pass ``layer != 0`` (True) or the label values themselves (False, e.g. 1 fg / 2 bg).
    help
        Tooltip: what the values mean.
    """

    label: str
    layer_types: tuple[str, ...]
    required: bool
    binary: bool
    help: str


@dataclass(frozen=True)
class ParamSpec:
    """A task option shown in the form: a check box (bool), a choice (``choices``) or a number."""

    key: str
    label: str
    default: Any
    choices: tuple[str, ...] = ()
    minimum: float = 0.0
    maximum: float = 1e6
    decimals: int = 3
    help: str = ""


@dataclass(frozen=True)
class TaskSpec:
    """Everything the generic :class:`~napari_doubledip._qt.task_widget.TaskWidget` needs for a task.

    Attributes
    ----------
    name
        Short task name (``"denoise"``), also stored in the output layers' metadata.
    title
        Widget display name (``"Denoise"``).
    stream
        Name of the :mod:`napari_doubledip.api` streaming function; it is called as
        ``stream(image_or_images[, hint], **options)``.
    description
        One or two sentences shown at the top of the widget.
    outputs
        The output layers.
    multi_input
        Take an ordered list of images (else one image).
    min_inputs
        Fewest images accepted (with ``multi_input``).
    hint
        The mask / hint layer, if the task takes one.
    params
        Task-specific options.
    default_net, default_steps
        Initial values of the net preset and step cap.
    """

    name: str
    title: str
    stream: str
    description: str
    outputs: tuple[OutputSpec, ...]
    multi_input: bool = False
    min_inputs: int = 1
    hint: HintSpec | None = None
    params: tuple[ParamSpec, ...] = field(default_factory=tuple)
    default_net: str = "default"
    default_steps: int = 2000
