"""The one dock widget behind every task: the controller between its form, its worker and its output layers."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from napari.qt.threading import GeneratorWorker
from qtpy.QtCore import QEvent, Qt, QTimer, Signal
from qtpy.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QToolButton, QVBoxLayout, QWidget

from ..registry import TaskEntry
from . import collector
from .loss_plot import LossPlot
from .output_layers import OutputLayers
from .pickers import LayerWatcher
from .run_model import (
    InputError,
    RunState,
    build_plan,
    explain_error,
    format_seconds,
    run_frames,
)
from .task_form import TaskForm

__all__ = ["StopOnQuitWorker", "TaskWidget", "explain_error"]

#: The progress bar's range (per mille).
PROGRESS_STEPS = 1000
#: How long after the widget is made the background import starts (ms).
PRELOAD_DELAY_MS = 100
#: How often the widget looks whether torch is imported, to list the devices (ms).
DEVICE_POLL_MS = 200
#: How long one event-loop turn may spend setting output layers' data while a run goes on (s):
#: small layers share a turn (and one repaint of the canvas), large ones get a turn each.
PRESENT_BUDGET_S = 0.012


class StopOnQuitWorker(GeneratorWorker):
    """A worker whose ``quit()`` (the Activity dock's cancel, napari's task status) ends the run as Stop does.

    superqt's ``quit()`` abandons the generator between two snapshots (``aborted``, and no
    result); this one sets the run's stop flag instead, so that the loop yields its final
    snapshot and returns its result through ``returned``, and the outputs are kept and recorded.
    """

    #: The run's stop flag (set by the widget before the worker starts).
    stop_flag: threading.Event

    def quit(self) -> None:
        """End the run at the next step, keeping its outputs (as Stop does)."""
        self.stop_flag.set()


class TaskWidget(QWidget):
    """A dock widget that runs one registered task (its :class:`~napari_doubledip.registry.TaskEntry`) on napari layers.

    The form (:class:`~napari_doubledip._qt.task_form.TaskForm`) gives the inputs and settings;
    Run copies the inputs and checks them on the main thread (shapes, dtypes, sizes: bad inputs
    fail at once, cheaply) and hands everything heavy (converting the inputs, building the task,
    its set-up and the optimisation) to a worker thread, whose errors are reported as a run's; the
    new output layers (:class:`~napari_doubledip._qt.output_layers.OutputLayers`) are created one
    per event-loop turn after Run returns. The worker's snapshots update the output layers and the
    progress bar, always on the main thread; the worker never touches a layer.

    Parameters
    ----------
    napari_viewer
        The viewer (napari passes it).
    spec
        The task's registry entry (default: the class's ``spec``).
    parent
        The parent widget.
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
        self.worker: StopOnQuitWorker | None = None
        self.state: RunState | None = None
        self._stop = threading.Event()
        self._present_timer = QTimer(self)
        self._present_timer.setSingleShot(True)
        self._present_timer.timeout.connect(self._present)
        # a QTimer, not QTimer.singleShot(0, ...): those are queued calls, and a chain of them runs
        # two turns' work before the event loop's timers and repaints get a turn
        self._create_timer = QTimer(self)
        self._create_timer.setSingleShot(True)
        self._create_timer.timeout.connect(self._create_layers)
        self._last_present = -float("inf")
        self._holds_collector = False
        self.outputs = OutputLayers(napari_viewer, self.spec)
        self.form = TaskForm(napari_viewer, self.spec, accept=lambda layer: not self.outputs.is_own(layer))
        for name in ("input_picker", "hint_picker", "all_frames", "steps", "max_seconds", "early_stop"):
            setattr(self, name, getattr(self.form, name))
        for name in ("param_widgets", "net", "lr", "seed", "device", "min_interval"):
            setattr(self, name, getattr(self.form, name))
        self._build()
        self._watcher = LayerWatcher(napari_viewer, self._on_layers_changed, self._on_layer_removed)
        self.destroyed.connect(self._stop.set)
        from ..core.preload import preload_in_background

        # a first run's imports (torch too), paid before Run is pressed; started once the dock
        # is in place (napari adds and lays it out after this returns: not beside the import)
        QTimer.singleShot(PRELOAD_DELAY_MS, preload_in_background)
        self._device_timer = QTimer(self)
        self._device_timer.setInterval(DEVICE_POLL_MS)
        self._device_timer.timeout.connect(self._fill_devices)
        if not self.form.fill_devices():
            self._device_timer.start()

    def _fill_devices(self) -> None:
        """List the devices once the background import has loaded torch (see :meth:`TaskForm.fill_devices`)."""
        if self.form.fill_devices():
            self._device_timer.stop()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        about = QLabel(self.spec.description)
        about.setWordWrap(True)
        layout.addWidget(about)
        layout.addWidget(self.form.main.native)
        self.advanced_toggle = QToolButton()
        self.advanced_toggle.setText("Advanced")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_toggle.toggled.connect(self._toggle_advanced)
        layout.addWidget(self.advanced_toggle)
        layout.addWidget(self.form.advanced.native)
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
        self.progress.setRange(0, PROGRESS_STEPS)
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

    def _toggle_advanced(self, shown: bool) -> None:
        self.form.advanced.visible = shown
        self.advanced_toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    def _on_layers_changed(self) -> None:
        try:
            self.form.refresh()
        except RuntimeError:  # the Qt side of this widget is gone
            self._release()

    def inputs(self) -> list[Any]:
        """The chosen input image layers, in order."""
        return self.form.inputs()

    def set_inputs(self, layers: list[Any]) -> None:
        """Choose the input image layer(s)."""
        self.form.set_inputs(layers)

    # ------------------------------------------------------------------ running
    @property
    def is_running(self) -> bool:
        """Whether a run is in progress."""
        return self.worker is not None

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
            plan = build_plan(self.spec, self.form, self.viewer.dims.point, self._stop)
            device = str(resolve_device(plan.options["device"]))
            self._stop.clear()
            plan.check(0)  # cheap checks (no conversion): bad inputs fail here, at once
        except (InputError, ValueError, TypeError) as exc:
            self._report(str(exc))
            return False
        except MemoryError as exc:  # the smallest run of this size will not fit (MemoryEstimateError)
            self._report(explain_error(exc), error=True)
            return False
        self.state = RunState(plan=plan, stop=self._stop, device=device)
        self.state.targets = self.outputs.targets(plan)
        worker = create_worker(
            run_frames,
            plan,
            self._stop,
            _start_thread=False,
            _ignore_errors=True,
            _worker_class=StopOnQuitWorker,
        )
        worker.stop_flag = self._stop
        worker.yielded.connect(self._on_yielded)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self._follow_hints(plan)
        self._last_present = -float("inf")
        self.loss_plot.clear()
        self._set_progress(0, "starting…")
        frames = f" ({len(plan.frames)} frames)" if len(plan.frames) > 1 else ""
        self.status.setText(f"Running on {device}{frames}…")
        self.run_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        collector.hold()  # no full garbage collection of the whole process mid-run
        self._holds_collector = True
        worker.start()
        self._create_timer.start(0)
        return True

    def _follow_hints(self, plan: Any) -> None:
        """Live re-hinting: each edit of the hint layer sends a copy of it to the running task.

        The copy is made here, on the main thread, after the layer reports a paint (or new
        data); the task takes the newest copy from its queue between two steps.
        """
        layer = plan.hint_layer
        if plan.live is None or layer is None:
            return
        pending = {"queued": False}

        def copy() -> None:
            pending["queued"] = False
            if not self.is_running:
                return
            try:
                plan.live.put(plan.read_hint(0))
            except InputError as exc:  # e.g. the layer was resized: keep the hints the run has
                self.status.setText(f"Hints not updated: {exc}")

        def send(_event: Any = None) -> None:
            # napari reports a paint before it writes the pixels: copy on the next event-loop
            # turn, once for a burst of edits
            if not pending["queued"]:
                pending["queued"] = True
                QTimer.singleShot(0, copy)

        layer.events.paint.connect(send)
        layer.events.data.connect(send)
        self._hint_follow = (layer, send)

    def _unfollow_hints(self) -> None:
        follow = getattr(self, "_hint_follow", None)
        if follow is not None:
            layer, send = follow
            layer.events.paint.disconnect(send)
            layer.events.data.disconnect(send)
            self._hint_follow = None

    def _create_layers(self) -> None:
        """Create the run's next new output layer, and come back for the next on the next event-loop turn."""
        if self.state is not None and self.is_running and self.outputs.create_pending(self.state, limit=1):
            self._create_timer.start(0)

    def stop(self) -> None:
        """Ask the run to end; it keeps the last outputs and still reports its result."""
        if self.is_running:
            self._stop.set()
            self.status.setText("Stopping…")

    # ------------------------------------------------------------------ worker signals
    def _on_yielded(self, item: tuple[int, Any]) -> None:
        state = self.state
        if state is None:
            return
        position, snapshot = item
        state.last_position, state.last_snapshot = position, snapshot
        self.outputs.stage(state, position, snapshot)  # a layer still to be created keeps it
        state.updates += 1
        total = snapshot.losses.get("total")
        if total is not None:
            self.loss_plot.add(float(total))
        self._set_progress(int(PROGRESS_STEPS * state.progress()), state.progress_text(snapshot))
        if not state.expectation_said and snapshot.expected_seconds is not None:
            state.expectation_said = True  # once a run, as soon as its step time is known
            line = snapshot.expectation()
            if line is not None:
                if self.form.region is not None and state.plan.region is None:
                    line += " (Region: try it on the region in view)"
                self.status.setText(f"{self.status.text()} {line[0].upper()}{line[1:]}.")
        if not self._present_timer.isActive():
            interval = float(state.plan.options.get("min_interval", 0.0))
            wait = self._last_present + interval - time.perf_counter()
            self._present_timer.start(int(1000 * max(0.0, wait)))

    def _present(self) -> None:
        """Put the latest snapshot into the next output layers (:data:`PRESENT_BUDGET_S`); come back on the next event-loop turn for the rest.

        Snapshots that come while the layers are being set replace the staged data (coalesced);
        a new round starts at most once per update interval.
        """
        state = self.state
        if state is None:
            return
        if self.outputs.present(state, budget=PRESENT_BUDGET_S):
            self._present_timer.start(0)
        else:
            self._last_present = time.perf_counter()

    def _flush(self) -> None:
        """Put the staged data into every output layer now (the run has ended)."""
        self._present_timer.stop()
        if self.state is not None:
            self.outputs.present(self.state)

    def _set_progress(self, value: int, text: str) -> None:
        """Set the progress bar without its synchronous repaint (QProgressBar.setValue repaints at once)."""
        self.progress.setUpdatesEnabled(False)
        try:
            self.progress.setValue(value)
            self.progress.setFormat(text)
        finally:
            self.progress.setUpdatesEnabled(True)  # schedules an ordinary repaint

    def _on_returned(self, results: list) -> None:
        state = self.state
        if state is None:
            return
        state.results = list(results)
        self.outputs.create_pending(state)
        self._flush()
        if not results:
            return
        info = state.record()
        self.outputs.tag(state, info)
        self.status.setText(
            f"Done on {info['device']}: {info.get('steps_run', '?')} steps in "
            f"{format_seconds(state.elapsed)} ({info.get('stop_reason')}).{results[-1].summary()}"
        )

    def _on_errored(self, exc: BaseException) -> None:
        if self.state is not None:
            self._flush()
            self.outputs.drop_empty(self.state)
        self._report(explain_error(exc), error=True)

    def _on_finished(self) -> None:
        if self._holds_collector:
            self._holds_collector = False
            collector.release()
        self._unfollow_hints()
        if self.state is not None:
            self.outputs.cancel_pending(self.state)
        self._flush()
        self.worker = None
        self.run_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        state = self.state
        if state is not None and state.last_snapshot is not None:
            complete = len(state.results) == len(state.plan.frames)
            self.progress.setValue(PROGRESS_STEPS if complete else int(PROGRESS_STEPS * state.progress()))
            self.progress.setFormat(self.progress.format().split(" · ETA")[0])
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
        self.run_finished.emit(state)

    def _on_layer_removed(self, layer: Any) -> None:
        """An output layer removed during a run: stop updating it, and stop the run."""
        if self.state is not None and self.is_running and self.outputs.forget(self.state, layer):
            self.stop()

    # ------------------------------------------------------------------ closing
    def _release(self) -> None:
        """End the run and stop following the viewer's events (the widget is closing)."""
        self._stop.set()
        self._watcher.disconnect()

    def event(self, event: QEvent) -> bool:
        """Release the viewer when the widget leaves its dock (napari's close button)."""
        if event.type() == QEvent.Type.ParentChange and self.parent() is None and hasattr(self, "_watcher"):
            self._release()
        return super().event(event)

    def hideEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        """Stop the run when the viewer's window closes (or the widget leaves it)."""
        if self.parent() is None or not self.window().isVisible():
            self._stop.set()
        super().hideEvent(event)

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        """Stop the run and release the viewer."""
        self._release()
        super().closeEvent(event)
