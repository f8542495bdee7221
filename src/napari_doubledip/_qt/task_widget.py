"""The one dock widget behind every task: pick layers, set a budget, run in a thread, watch it fit."""

from __future__ import annotations

import math
import sys
import threading
from typing import Any

import numpy as np
from qtpy.QtCore import QEvent, Qt, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core.options import NET_PRESETS, OptionInfo
from ..registry import Output, TaskEntry
from .loss_plot import LossPlot
from .pickers import LayerCheckList, LayerCombo, LayerWatcher
from .run_model import (
    OUTPUT_TAG,
    RESULT_KEY,
    InputError,
    OutputTarget,
    RunPlan,
    RunState,
    frame_indices,
    frame_shape,
    hint_of,
    leading_shape,
    read_frame,
    read_hint,
    run_frames,
)

__all__ = ["NET_PRESETS", "TaskWidget", "explain_error"]


#: Largest value of a number in the form when its option sets none.
FORM_MAXIMUM = 1e6


def explain_error(exc: BaseException) -> str:
    """A message for a failed run, with advice for the usual causes."""
    exc = getattr(exc, "original", exc)
    text = f"{type(exc).__name__}: {exc}"
    low = str(exc).lower()
    if "out of memory" in low or type(exc).__name__ == "OutOfMemoryError":
        return (
            "The device ran out of memory. Use a smaller image (crop or downscale it), the 'default' "
            f"net preset, or device 'cpu' under Advanced. ({text})"
        )
    if "mps" in low:
        return f"Apple MPS failed; choose device 'cpu' under Advanced. ({text})"
    return text


def _format_seconds(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class TaskWidget(QWidget):
    """A dock widget that runs one registered task (its :class:`~napari_doubledip.registry.TaskEntry`) on napari layers.

    The optimisation runs in a worker thread on private copies of the inputs; its snapshots
    update the output layers (created once per run, replaced on a re-run) and the progress bar.

    Parameters
    ----------
    napari_viewer
        The viewer (napari passes it).
    spec
        The task's registry entry (default: the class's ``spec``).
    """

    #: Emitted with the :class:`RunState` when a run has ended (finished, stopped or failed).
    run_finished = Signal(object)

    #: The task of a subclass (see :mod:`napari_doubledip._qt.widgets`).
    spec: TaskEntry

    def __init__(
        self, napari_viewer: Any, spec: TaskEntry | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.spec = spec if spec is not None else type(self).spec
        self.worker: Any = None
        self.state: RunState | None = None
        self._stop = threading.Event()
        self.param_widgets: dict[str, QWidget] = {}
        self._build()
        self._watcher = LayerWatcher(napari_viewer, self._on_layers_changed)
        napari_viewer.layers.events.removed.connect(self._on_layer_removed)
        self.destroyed.connect(self._stop.set)
        self._select_defaults()

    # ------------------------------------------------------------------ user interface
    def _build(self) -> None:
        from napari.layers import Image, Labels, Shapes

        spec = self.spec
        hint = hint_of(spec)
        layout = QVBoxLayout(self)
        about = QLabel(spec.description)
        about.setWordWrap(True)
        layout.addWidget(about)

        form = QFormLayout()
        if spec.inputs.group:
            self.input_picker: LayerCombo | LayerCheckList = LayerCheckList(
                self.viewer, (Image,), accept=self._is_input_candidate
            )
            form.addRow("Images", self.input_picker)
        else:
            self.input_picker = LayerCombo(self.viewer, (Image,), accept=self._is_input_candidate)
            form.addRow("Image", self.input_picker)
        self.input_picker.changed.connect(self._update_frame_controls)
        self.hint_picker: LayerCombo | None = None
        if hint is not None:
            kinds = {"labels": Labels, "shapes": Shapes}
            types = tuple(kinds[k] for k in hint.layer_types)
            self.hint_picker = LayerCombo(self.viewer, types, optional=not hint.required)
            self.hint_picker.setToolTip(hint.help)
            form.addRow(hint.label, self.hint_picker)
        self.all_frames = QCheckBox("All frames")
        self.all_frames.setToolTip(
            "Process every frame of a stack in turn and fill the output stacks (else: the frame shown)"
        )
        form.addRow("Stack", self.all_frames)
        self.steps = QSpinBox()
        self.steps.setRange(1, 1_000_000)
        self.steps.setValue(spec.default_steps)
        self.steps.setToolTip("Cap on optimisation steps")
        form.addRow("Steps", self.steps)
        self.max_seconds = QDoubleSpinBox()
        self.max_seconds.setRange(0, 86400)
        self.max_seconds.setDecimals(0)
        self.max_seconds.setSuffix(" s")
        self.max_seconds.setSpecialValueText("no limit")
        self.max_seconds.setValue(300)
        self.max_seconds.setToolTip("Time budget per frame; the run ends at whichever cap comes first")
        form.addRow("Time budget", self.max_seconds)
        self.early_stop = QCheckBox("Stop when it stops improving")
        self.early_stop.setChecked(True)
        form.addRow("Early stop", self.early_stop)
        for param in spec.shown_options:
            widget = self._param_widget(param)
            self.param_widgets[param.name] = widget
            form.addRow(param.label, widget)
        layout.addLayout(form)

        self.advanced_toggle = QToolButton()
        self.advanced_toggle.setText("Advanced")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_toggle.toggled.connect(self._toggle_advanced)
        layout.addWidget(self.advanced_toggle)
        self.advanced = QWidget()
        adv = QFormLayout(self.advanced)
        adv.setContentsMargins(12, 0, 0, 0)
        self.net = QComboBox()
        self.net.addItems([spec.default_net, *(n for n in NET_PRESETS if n != spec.default_net)])
        self.net.setToolTip("Generator network preset ('default' is the fast one)")
        adv.addRow("Net", self.net)
        self.lr = QDoubleSpinBox()
        self.lr.setRange(0, 1)
        self.lr.setDecimals(4)
        self.lr.setSingleStep(0.001)
        self.lr.setSpecialValueText("task default")
        self.lr.setValue(0)
        adv.addRow("Learning rate", self.lr)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("Same seed, same device: same result")
        adv.addRow("Seed", self.seed)
        self.device = QComboBox()
        self._fill_devices()
        adv.addRow("Device", self.device)
        self.min_interval = QDoubleSpinBox()
        self.min_interval.setRange(0, 60)
        self.min_interval.setDecimals(2)
        self.min_interval.setSingleStep(0.1)
        self.min_interval.setSuffix(" s")
        self.min_interval.setValue(0.3)
        self.min_interval.setToolTip("Shortest time between two updates of the output layers")
        adv.addRow("Update every", self.min_interval)
        self.advanced.setVisible(False)
        layout.addWidget(self.advanced)

        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.run_button.clicked.connect(self.run)
        self.stop_button.clicked.connect(self.stop)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.stop_button)
        layout.addLayout(buttons)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("ready")
        layout.addWidget(self.progress)
        self.loss_plot = LossPlot()
        layout.addWidget(self.loss_plot)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.status)
        layout.addStretch(1)

    def _param_widget(self, param: OptionInfo) -> QWidget:
        if isinstance(param.default, bool):
            widget: QWidget = QCheckBox()
            widget.setChecked(param.default)
        elif param.choices:
            widget = QComboBox()
            widget.addItems(list(param.choices))
            widget.setCurrentText(str(param.default))
        elif isinstance(param.default, int):
            widget = QSpinBox()
            widget.setRange(int(param.minimum or 0), int(param.maximum or FORM_MAXIMUM))
            widget.setValue(param.default)
        else:
            widget = QDoubleSpinBox()
            widget.setDecimals(param.decimals)
            widget.setRange(param.minimum or 0.0, param.maximum or FORM_MAXIMUM)
            widget.setValue(float(param.default))
        widget.setToolTip(param.help)
        return widget

    def _param_values(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for param in self.spec.shown_options:
            widget = self.param_widgets[param.name]
            if isinstance(widget, QCheckBox):
                values[param.name] = widget.isChecked()
            elif isinstance(widget, QComboBox):
                values[param.name] = widget.currentText()
            else:
                values[param.name] = widget.value()
        return values

    def _fill_devices(self) -> None:
        from ..core.devices import available_devices

        devices = available_devices()
        self.device.addItem(f"auto ({devices[0]})", "auto")
        for name in devices:
            self.device.addItem(name, name)
        self.device.setToolTip("Where the nets run: 'auto' takes a CUDA GPU, then Apple MPS, then the CPU")

    def _toggle_advanced(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        self.advanced_toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    # ------------------------------------------------------------------ layer pickers
    def _select_defaults(self) -> None:
        from napari.layers import Image

        active = self.viewer.layers.selection.active
        if not self.spec.inputs.group and isinstance(active, Image):
            self.input_picker.set_value(active)
        if self.hint_picker is not None:
            layers = self.hint_picker.layers()
            if layers:
                self.hint_picker.set_value(layers[0])
        self._update_frame_controls()

    def _is_input_candidate(self, layer: Any) -> bool:
        """Any image but this task's own outputs (those of other tasks may be chained)."""
        tag = layer.metadata.get(OUTPUT_TAG)
        return not (isinstance(tag, dict) and tag.get("task") == self.spec.name)

    def _on_layers_changed(self) -> None:
        try:
            self.input_picker.refresh()
            if self.hint_picker is not None:
                self.hint_picker.refresh()
        except RuntimeError:  # the Qt side of this widget is gone
            self._watcher.disconnect()

    def _update_frame_controls(self) -> None:
        images = self.inputs()
        stack = any(leading_shape(layer) for layer in images)
        self.all_frames.setEnabled(stack)
        if not stack:
            self.all_frames.setChecked(False)

    def inputs(self) -> list[Any]:
        """The chosen input image layers, in order."""
        value = self.input_picker.value()
        if isinstance(value, list):
            return value
        return [] if value is None else [value]

    def set_inputs(self, layers: list[Any]) -> None:
        """Choose the input image layer(s)."""
        if self.spec.inputs.group:
            self.input_picker.set_value(list(layers))
        else:
            self.input_picker.set_value(layers[0] if layers else None)

    # ------------------------------------------------------------------ running
    @property
    def is_running(self) -> bool:
        """Whether a run is in progress."""
        return self.worker is not None

    def options(self) -> dict[str, Any]:
        """Keyword options for the api stream function, from the form."""
        options: dict[str, Any] = {
            "steps": int(self.steps.value()),
            "max_seconds": float(self.max_seconds.value()) or None,
            "early_stop": self.early_stop.isChecked(),
            "net": self.net.currentText(),
            "seed": int(self.seed.value()),
            "device": self.device.currentData(),
            "min_interval": float(self.min_interval.value()),
            **self._param_values(),
        }
        if self.lr.value() > 0:
            options["lr"] = float(self.lr.value())
        return options

    def plan(self) -> RunPlan:
        """Copy the inputs out of the chosen layers and check them.

        Raises
        ------
        InputError
            With a message saying what to change.
        """
        spec = self.spec
        hint = hint_of(spec)
        sources = self.inputs()
        if len(sources) < spec.inputs.min_images:
            if spec.inputs.group:
                raise InputError(
                    f"Tick at least {spec.inputs.min_images} image layer(s) in the list (open images with "
                    "File ▸ Open, or File ▸ Open Sample ▸ napari-doubledip)."
                )
            raise InputError("Choose an image layer (open one, or File ▸ Open Sample ▸ napari-doubledip).")
        leads = {leading_shape(layer) for layer in sources}
        if len(leads) > 1:
            raise InputError("The images are stacks of different lengths; choose images of one kind.")
        hint_layer = self.hint_picker.value() if self.hint_picker is not None else None
        if hint is not None and hint.required and hint_layer is None:
            raise InputError(f"Choose a {hint.label.lower()} layer: {hint.help}")
        all_frames = self.all_frames.isChecked() and bool(leading_shape(sources[0]))
        frames = frame_indices(sources[0], self.viewer.dims.point, all_frames)
        images: list[Any] = []
        hints: list[np.ndarray | None] = []
        for index in frames:
            frame = [read_frame(layer, index) for layer in sources]
            images.append(frame if spec.inputs.group else frame[0])
            if hint_layer is None:
                hints.append(None)
            else:
                hints.append(read_hint(hint_layer, index, sources[0], hint.binary, frame[0].shape))
        options = {**self.options(), "stop": self._stop}
        if options["device"] in ("cpu", "auto"):
            from ..core.devices import cpu_count

            options["threads"] = max(1, cpu_count() - 1)
        return RunPlan(spec, sources, frames, images, hints, options, all_frames)

    def _report(self, message: str, error: bool = False) -> None:
        from napari.utils.notifications import show_error, show_warning

        self.status.setText(message)
        (show_error if error else show_warning)(f"{self.spec.title}: {message}")

    def run(self) -> bool:
        """Start a run with the chosen layers and settings; return whether it started."""
        if self.is_running:
            return False
        from napari.qt.threading import create_worker

        from ..core.devices import resolve_device

        try:
            plan = self.plan()
            device = str(resolve_device(plan.options["device"]))
            self._stop.clear()
            first = plan.stream(0)  # builds the task: bad inputs fail here, on the main thread
        except (InputError, ValueError, TypeError) as exc:
            self._report(str(exc))
            return False
        self.state = RunState(plan=plan, stop=self._stop, device=device)
        self.state.targets = self._make_targets(plan)
        worker = create_worker(run_frames, plan, first, self._stop, _start_thread=False, _ignore_errors=True)
        worker.yielded.connect(self._on_yielded)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self.loss_plot.clear()
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        frames = f" ({len(plan.frames)} frames)" if len(plan.frames) > 1 else ""
        self.status.setText(f"Running on {device}{frames}…")
        self.run_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        worker.start()
        return True

    def stop(self) -> None:
        """Ask the run to end; it keeps the last outputs and still reports its result."""
        if self.is_running:
            self._stop.set()
            self.status.setText("Stopping…")

    # ------------------------------------------------------------------ output layers
    def _output_name(self, source: Any, output: Output) -> str:
        return f"{source.name} · {output.suffix}"

    def _find_output(self, tag: dict[str, str]) -> Any | None:
        for layer in self.viewer.layers:
            if layer.metadata.get(OUTPUT_TAG) == tag:
                return layer
        return None

    def _make_targets(self, plan: RunPlan) -> list[OutputTarget]:
        """Find (re-run) or create the output layers of a run, placed like their sources."""
        from napari.layers import Image, Labels

        targets = []
        for output in self.spec.outputs:
            pairs = (
                [(output.key.format(i=i), src) for i, src in enumerate(plan.sources)]
                if output.per_input
                else [(output.key, plan.sources[0])]
            )
            for key, source in pairs:
                tag = {"task": self.spec.name, "source": source.name, "key": output.key}
                layer_type = Labels if output.kind == "labels" else Image
                ndim = source.ndim if plan.all_frames else 2
                layer = self._find_output(tag)
                created = layer is None or not isinstance(layer, layer_type) or layer.ndim != ndim
                if created:
                    position = None
                    if layer is not None:  # same output, other kind or dimensions: replace in place
                        position = list(self.viewer.layers).index(layer)
                        self.viewer.layers.remove(layer)
                    layer = self._add_output_layer(plan, source, output, tag)
                    if position is not None:
                        self.viewer.layers.move(len(self.viewer.layers) - 1, position)
                else:
                    layer.metadata.pop(RESULT_KEY, None)
                    layer.scale = tuple(source.scale)[-ndim:]
                    layer.translate = tuple(source.translate)[-ndim:]
                targets.append(OutputTarget(output, key, layer, source, created))
        return targets

    def _add_output_layer(self, plan: RunPlan, source: Any, output: Output, tag: dict) -> Any:
        """A new output layer holding zeros until the first snapshot, with the source's geometry."""
        n = source.ndim if plan.all_frames else 2
        lead = leading_shape(source) if plan.all_frames else ()
        frame = frame_shape(source)
        geometry = {
            "name": self._output_name(source, output),
            "scale": tuple(source.scale)[-n:],
            "translate": tuple(source.translate)[-n:],
            "metadata": {OUTPUT_TAG: tag},
            "visible": output.visible,
        }
        if output.kind == "labels":
            return self.viewer.add_labels(np.zeros(lead + frame[:2], np.uint8), **geometry)
        if output.kind == "mask":
            return self.viewer.add_image(
                np.zeros(lead + frame[:2], np.float32),
                contrast_limits=(0.0, 1.0),
                colormap=output.colormap,
                blending="additive",
                **geometry,
            )
        rgb = bool(source.rgb)
        return self.viewer.add_image(
            np.zeros(lead + frame, source.dtype),
            rgb=rgb,
            contrast_limits=tuple(source.contrast_limits),
            colormap=None if rgb else source.colormap,
            **geometry,
        )

    # ------------------------------------------------------------------ worker signals
    def _on_yielded(self, item: tuple[int, Any]) -> None:
        state = self.state
        if state is None:
            return
        position, snapshot = item
        state.last_position, state.last_snapshot = position, snapshot
        for target in state.targets:
            value = snapshot.outputs.get(target.key)
            if value is None or target.layer is None:
                continue
            target.layer.data = target.frame_array(state.plan, position, value)
            target.updated = True
        state.updates += 1
        total = snapshot.losses.get("total")
        if total is not None:
            self.loss_plot.add(float(total))
        self._show_progress(state, snapshot)

    def _show_progress(self, state: RunState, snapshot: Any) -> None:
        self.progress.setValue(int(1000 * state.progress()))
        n = len(state.plan.frames)
        frame = f"frame {state.last_position + 1}/{n} · " if n > 1 else ""
        total = f"/{snapshot.total}" if snapshot.total else ""
        eta = snapshot.eta
        if eta is not None and n > 1:
            eta += (n - state.last_position - 1) * snapshot.elapsed / max(snapshot.progress, 1e-6)
        self.progress.setFormat(
            f"{frame}step {snapshot.step}{total} · {_format_seconds(snapshot.elapsed)} · "
            f"ETA {_format_seconds(eta)}"
        )

    def _on_returned(self, results: list) -> None:
        state = self.state
        if state is None:
            return
        state.results = list(results)
        if not results:
            return
        last = results[-1]
        info: dict[str, Any] = dict(getattr(last, "params", {}) or {})
        info.update(
            {
                "sources": [layer.name for layer in state.plan.sources],
                "device": info.get("device", state.device),
                "elapsed": round(state.elapsed, 3),
                "final_losses": info.get("final_losses", dict(state.last_snapshot.losses)),
            }
        )
        if state.plan.frames[0]:  # a stack: which frames were processed
            info["frames"] = [list(index) for index in state.plan.frames[: len(results)]]
        if len(state.plan.frames) > 1:
            info["per_frame"] = [dict(getattr(r, "params", {}) or {}) for r in results]
        for target in state.targets:
            if target.layer is not None:
                target.layer.metadata[RESULT_KEY] = info
        reason = info.get("stop_reason")
        summary = last.summary()
        self.status.setText(
            f"Done on {info['device']}: {info.get('steps_run', '?')} steps in "
            f"{_format_seconds(state.elapsed)} ({reason}).{summary}"
        )

    def _on_errored(self, exc: BaseException) -> None:
        state = self.state
        if state is not None:
            for target in state.targets:  # drop layers that never got an output
                if target.created and not target.updated and target.layer in self.viewer.layers:
                    self.viewer.layers.remove(target.layer)
                    target.layer = None
        self._report(explain_error(exc), error=True)

    def _on_finished(self) -> None:
        self.worker = None
        self.run_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        state = self.state
        if state is not None and state.last_snapshot is not None:
            complete = len(state.results) == len(state.plan.frames)
            self.progress.setValue(1000 if complete else int(1000 * state.progress()))
            self.progress.setFormat(self.progress.format().split(" · ETA")[0])
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
        self.run_finished.emit(state)

    def _on_layer_removed(self, event: Any) -> None:
        """An output layer removed during a run: stop updating it, and stop the run."""
        state = self.state
        if state is None or not self.is_running:
            return
        for target in state.targets:
            if target.layer is not None and target.layer == event.value:
                target.layer = None
                self.stop()

    # ------------------------------------------------------------------ closing
    def event(self, event: QEvent) -> bool:
        """Stop the run when the widget leaves its dock (napari's close button) or its window closes."""
        if event.type() == QEvent.Type.ParentChange and self.parent() is None:
            self._stop.set()
        return super().event(event)

    def hideEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self.parent() is None or not self.window().isVisible():
            self._stop.set()
        super().hideEvent(event)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._stop.set()
        super().closeEvent(event)
