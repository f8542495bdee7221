"""The form of a task's dock widget, built with magicgui from the task's registry entry.

Inputs (napari layer choices; an ordered check list for a group of images), the budget, the
task's shown options (one widget per :class:`~napari_doubledip.core.options.OptionInfo`, the
label and tooltip taken from it) and the advanced settings. The form reads values; it runs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, SpinBox
from magicgui.widgets.bases import ValueWidget

from ..core.options import NET_PRESETS, OptionInfo
from ..registry import TaskEntry
from .pickers import layer_choice, layer_list, refresh_choice
from .region import REGION_WHOLE, region_choices
from .run_model import hint_of, leading_shape

__all__ = ["FORM_MAXIMUM", "MAX_STEPS", "TaskForm", "device_choices", "option_widget"]

#: Largest value of a number in the form when its option sets none.
FORM_MAXIMUM = 1e6
#: Largest step cap the form accepts.
MAX_STEPS = 1_000_000
#: The time budget a new form starts with (seconds; 0 = no limit).
DEFAULT_BUDGET_S = 300.0
#: Largest time budget the form accepts (one day).
MAX_BUDGET_S = 86400.0
#: The shortest time between two updates of the output layers a new form starts with (seconds).
DEFAULT_UPDATE_S = 0.3


def option_widget(info: OptionInfo) -> ValueWidget:
    """The magicgui widget of one task option: check box, choice, or number in the option's range.

    Parameters
    ----------
    info
        The option (its default decides the kind of widget).

    Returns
    -------
    The widget, set to the default, labelled and with the option's help as tooltip.
    """
    common: dict[str, Any] = {"label": info.label, "tooltip": info.help, "name": info.name}
    if isinstance(info.default, bool):
        return CheckBox(value=info.default, **common)
    if info.choices:
        return ComboBox(choices=list(info.choices), value=str(info.default), **common)
    if isinstance(info.default, int):
        low, high = int(info.minimum or 0), int(info.maximum or FORM_MAXIMUM)
        return SpinBox(value=info.default, min=low, max=high, **common)
    widget = FloatSpinBox(min=info.minimum or 0.0, max=info.maximum or FORM_MAXIMUM, **common)
    widget.native.setDecimals(info.decimals)
    widget.value = float(info.default)
    return widget


def device_choices(devices: list[str] | None) -> list[tuple[str, str]]:
    """The device choice's (label, value) pairs: 'auto' (naming the device it takes) and each device.

    ``None`` (torch not imported yet): 'auto' and 'cpu' only.
    """
    if devices is None:
        return [("auto", "auto"), ("cpu", "cpu")]
    return [(f"auto ({devices[0]})", "auto"), *((name, name) for name in devices)]


class TaskForm:
    """The magicgui form of one task: its inputs, budget, options and advanced settings.

    Parameters
    ----------
    viewer
        The napari viewer whose layers the pickers list.
    spec
        The task's registry entry.
    accept
        Which image layers may be inputs (e.g. not the task's own outputs).

    Attributes
    ----------
    main, advanced
        The two magicgui containers (``advanced`` starts hidden).
    input_picker
        A layer choice, or an ordered list of image layers for a task taking a group.
    hint_picker
        The mask / hints / box layer choice (``None`` when the task takes none).
    region
        Which part of the image to run on: the whole image, the region in view, or the rectangle
        of a Shapes layer (``None`` for a task taking a group of images).
    param_widgets
        The task's shown options by name.
    """

    def __init__(self, viewer: Any, spec: TaskEntry, accept: Callable[[Any], bool]) -> None:
        from napari.layers import Image, Labels, Shapes

        self.viewer = viewer
        self.spec = spec
        if spec.inputs.group:
            self.input_picker: ValueWidget = layer_list(viewer, (Image,), label="Images", accept=accept)
        else:
            self.input_picker = layer_choice(viewer, (Image,), label="Image", accept=accept)
        hint = hint_of(spec)
        self.hint_picker: ComboBox | None = None
        if hint is not None:
            kinds = {"labels": Labels, "shapes": Shapes}
            types = tuple(kinds[k] for k in hint.layer_types)
            self.hint_picker = layer_choice(
                viewer, types, label=hint.label, tooltip=hint.help, nullable=not hint.required
            )
        self.region: ComboBox | None = None
        if not spec.inputs.group:
            self.region = ComboBox(
                choices=lambda _widget: region_choices(viewer),
                label="Region",
                tooltip=(
                    "Run on part of the image: faster on a large one, to try the settings. The region "
                    "in view, or the last rectangle of a Shapes layer; the outputs land over that part "
                    "of the image. Then choose the whole image and run again."
                ),
            )
            self.region.value = REGION_WHOLE
        self.all_frames = CheckBox(
            text="All frames of a stack",
            tooltip="Process every frame of a stack in turn and fill the output stacks (else: the frame shown)",
        )
        self.steps = SpinBox(
            value=spec.default_steps, min=1, max=MAX_STEPS, label="Steps", tooltip="Cap on optimisation steps"
        )
        self.max_seconds = FloatSpinBox(
            min=0,
            max=MAX_BUDGET_S,
            step=1,
            label="Time budget",
            tooltip="Time budget per frame; the run ends at whichever cap comes first",
        )
        self.max_seconds.native.setDecimals(0)
        self.max_seconds.native.setSuffix(" s")
        self.max_seconds.native.setSpecialValueText("no limit")
        self.max_seconds.value = DEFAULT_BUDGET_S
        self.early_stop = CheckBox(value=True, text="Stop early when it stops improving")
        self.param_widgets = {info.name: option_widget(info) for info in spec.shown_options}
        pickers = [self.input_picker] + ([self.hint_picker] if self.hint_picker is not None else [])
        region = [self.region] if self.region is not None else []
        budget = [*region, self.all_frames, self.steps, self.max_seconds, self.early_stop]
        self.main = Container(widgets=[*pickers, *budget, *self.param_widgets.values()])
        self._build_advanced()
        self.input_picker.changed.connect(self.update_frame_controls)
        self.select_defaults()

    def _build_advanced(self) -> None:
        spec = self.spec
        nets = [spec.default_net, *(n for n in NET_PRESETS if n != spec.default_net)]
        self.net = ComboBox(
            choices=nets, label="Net", tooltip="Generator network preset ('default' is the fast one)"
        )
        self.lr = FloatSpinBox(min=0, max=1, step=0.001, label="Learning rate")
        self.lr.native.setDecimals(4)
        self.lr.native.setSpecialValueText("task default")
        self.lr.value = 0.0
        self.seed = SpinBox(min=0, max=2**31 - 1, label="Seed", tooltip="Same seed, same device: same result")
        self.device = ComboBox(
            choices=device_choices(None),
            label="Device",
            tooltip="Where the nets run: 'auto' takes a CUDA GPU, then Apple MPS, then the CPU",
        )  # the devices are listed by fill_devices once torch is imported
        self.min_interval = FloatSpinBox(
            min=0,
            max=60,
            step=0.1,
            label="Update every",
            tooltip="Shortest time between two updates of the output layers",
        )
        self.min_interval.native.setSuffix(" s")
        self.min_interval.value = DEFAULT_UPDATE_S
        advanced = [self.net, self.lr, self.seed, self.device, self.min_interval]
        self.advanced = Container(widgets=advanced, visible=False)

    def fill_devices(self) -> bool:
        """List this machine's devices in the device choice once torch is imported; return whether it is.

        Opening the dock does not import torch (1-3 s on the GUI thread): the choice starts with
        'auto' and 'cpu', the widget's background import (:mod:`napari_doubledip.core.preload`)
        loads torch, and this is called again (a timer on the GUI thread) until it is done. The
        chosen value is kept.
        """
        from ..core.preload import devices_if_loaded

        devices = devices_if_loaded()
        if devices is None:
            return False
        value = self.device.value
        self.device.choices = []  # else the current item keeps its place ahead of the new ones
        self.device.choices = device_choices(devices)
        self.device.value = value if value in devices else "auto"
        return True

    # ------------------------------------------------------------------ layers
    def select_defaults(self) -> None:
        """Pick the active image layer as input, and the first hint layer, when there are any."""
        from napari.layers import Image

        active = self.viewer.layers.selection.active
        if not self.spec.inputs.group and isinstance(active, Image) and active in self.input_picker.choices:
            self.input_picker.value = active
        if self.hint_picker is not None:
            layers = [layer for layer in self.hint_picker.choices if layer is not None]
            if layers:
                self.hint_picker.value = layers[0]
        self.update_frame_controls()

    def refresh(self) -> None:
        """Follow the viewer's layers (added, removed, moved, renamed)."""
        if self.spec.inputs.group:
            self.input_picker.native.refresh()
        else:
            refresh_choice(self.input_picker)
        if self.hint_picker is not None:
            refresh_choice(self.hint_picker)
        if self.region is not None:
            refresh_choice(self.region, default=REGION_WHOLE)

    def update_frame_controls(self, *_args: Any) -> None:
        """Offer "All frames" only when an input is a stack."""
        stack = any(leading_shape(layer) for layer in self.inputs())
        self.all_frames.enabled = stack
        if not stack:
            self.all_frames.value = False

    def inputs(self) -> list[Any]:
        """The chosen input image layers, in order."""
        value = self.input_picker.value
        if isinstance(value, list):
            return value
        return [] if value is None else [value]

    def set_inputs(self, layers: list[Any]) -> None:
        """Choose the input image layer(s)."""
        if self.spec.inputs.group:
            self.input_picker.value = list(layers)
        else:
            self.input_picker.value = layers[0] if layers else None

    # ------------------------------------------------------------------ values
    def options(self) -> dict[str, Any]:
        """Keyword options for the task's API stream function."""
        options: dict[str, Any] = {
            "steps": int(self.steps.value),
            "max_seconds": float(self.max_seconds.value) or None,
            "early_stop": bool(self.early_stop.value),
            "net": self.net.value,
            "seed": int(self.seed.value),
            "device": self.device.value,
            "min_interval": float(self.min_interval.value),
            **{name: widget.value for name, widget in self.param_widgets.items()},
        }
        if self.lr.value > 0:
            options["lr"] = float(self.lr.value)
        return options
