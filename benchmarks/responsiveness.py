"""How responsive the viewer stays while a task's dock widget runs: a 10 ms QTimer on the GUI thread.

    xvfb-run -a python benchmarks/responsiveness.py [--size 128] [--seconds 15] [--tasks denoise,segment] [--warm]
    xvfb-run -a python benchmarks/responsiveness.py --dock [--no-preload] --tasks denoise

For each task: a shown viewer with the task's sample at ``--size``, its dock widget (through the
manifest), device CPU, the default settings but a time budget of ``--seconds`` and no early stop.
A QTimer ticks every 10 ms on the GUI thread and records when it fires; the gaps between ticks
are the times the GUI thread was busy (a gap of ~10 ms means responsive). Reported per task:

- *Run returns*: how long the Run button's handler takes (inputs copied, task built and checked,
  output layers created, worker started);
- *Run blocks*: the largest gap in the first second after Run (the handler plus drawing the new
  layers);
- *p99* and *largest gap* while training, from one second after Run to the end of the run;
- the largest gap in the 4 s after the run's end (the final layer updates; the widget holds
  Python's full garbage collections during a run, and one may follow its end).

The Run button is pressed once the widget's background import (torch, SciPy) has ended, as a
user would, seconds after opening the dock: a Run pressed during it waits for it.

With ``--warm`` every task first runs two steps headless on a 32² sample, so that one-time
costs of a process's first run (first use of scikit-image and SciPy, ahead of which the widget
imports them in the background when it opens; before FusedAdam, torch.optim's first optimiser
imported torch._dynamo: 2-4 s of Python holding the GIL in turns) are not measured.

With ``--dock``: the gaps while the first task's dock widget opens and the 4 s after (the
widget's background import of a first run's modules; ``--no-preload`` without it).

Prints one markdown table.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

PLUGIN = "napari-doubledip"
TICK_MS = 10
#: Gaps after Run that count as pressing Run, not as training (seconds).
RUN_WINDOW_S = 1.0
#: How long after the run's end the gaps are still recorded (seconds).
AFTER_S = 4.0
#: ``--no-preload``: the widget's background import is off.
NO_PRELOAD = False


class TickRecorder:
    """Records when a 10 ms QTimer on the GUI thread fires."""

    def __init__(self) -> None:
        from qtpy.QtCore import QTimer

        self.ticks: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))

    def gaps_ms(self, start: float, end: float = float("inf")) -> np.ndarray:
        """Gaps between ticks (ms) whose second tick falls in ``[start, end)``."""
        t = np.asarray(self.ticks)
        gaps = np.diff(t)
        keep = (t[1:] >= start) & (t[1:] < end)
        return 1000 * gaps[keep]


def measure(task: str, size: int, seconds: float) -> dict[str, float]:
    """Run ``task``'s widget on its sample for ``seconds`` and return the gap measures."""
    import napari
    from napari.layers import Image, Layer
    from napari.qt import get_qapp
    from qtpy.QtCore import QEventLoop, QTimer

    from napari_doubledip import registry

    entry = registry.get(task)
    viewer = napari.Viewer(show=True, title=f"responsiveness: {task}")
    layers = [viewer.add_layer(Layer.create(*data)) for data in entry.sample.layers(size)]
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, entry.title)
    widget.set_inputs([layer for layer in layers if isinstance(layer, Image)])
    widget.max_seconds.value = seconds
    widget.steps.value = 1_000_000
    widget.early_stop.value = False
    widget.device.value = "cpu"
    app = get_qapp()
    recorder = TickRecorder()
    recorder.timer.start()
    wait_for_preload()
    settle = QEventLoop()
    QTimer.singleShot(1000, settle.quit)  # let the viewer draw its layers first
    settle.exec()
    done = QEventLoop()
    widget.run_finished.connect(lambda _state: done.quit())
    pressed = time.perf_counter()
    started = widget.run()
    returned = time.perf_counter()
    if not started:
        raise RuntimeError(f"{task}: the run did not start: {widget.status.text()}")
    done.exec()
    ended = time.perf_counter()
    after = QEventLoop()
    QTimer.singleShot(int(1000 * AFTER_S), after.quit)  # what the run's end costs (final layer updates, GC)
    after.exec()
    recorder.timer.stop()
    app.processEvents()
    state = widget.state
    steps = state.results[-1].params.get("steps_run", 0) if state.results else 0
    pressing = recorder.gaps_ms(pressed, pressed + RUN_WINDOW_S)
    training = recorder.gaps_ms(pressed + RUN_WINDOW_S, ended)
    ending = recorder.gaps_ms(ended, ended + AFTER_S)
    viewer.close()
    return {
        "run_returns": 1000 * (returned - pressed),
        "run_blocks": float(pressing.max()) if pressing.size else float("nan"),
        "p99": float(np.percentile(training, 99)) if training.size else float("nan"),
        "largest": float(training.max()) if training.size else float("nan"),
        "after_end": float(ending.max()) if ending.size else float("nan"),
        "ticks": float(training.size),
        "steps": float(steps),
    }


def wait_for_preload(timeout: float = 60.0) -> None:
    """Run the event loop until the widget's background import (torch, SciPy) has ended.

    A user presses Run seconds after opening the dock; a Run pressed while torch is still being
    imported in the background waits for that import (once per process).
    """
    from qtpy.QtCore import QEventLoop, QTimer

    from napari_doubledip.core import preload

    end = time.perf_counter() + timeout
    while not preload.done.is_set() and not NO_PRELOAD and time.perf_counter() < end:
        pause = QEventLoop()
        QTimer.singleShot(50, pause.quit)
        pause.exec()


def measure_dock(task: str, size: int, seconds: float = 4.0) -> dict[str, float]:
    """Open ``task``'s dock widget on its sample in a fresh viewer and record the gaps for ``seconds`` after.

    The widget starts the background import of a first run's modules
    (:mod:`napari_doubledip.core.preload`) when it opens; ``--no-preload`` turns that off, to
    compare. Meaningful once per process (the imports happen once).
    """
    import napari
    from napari.layers import Layer
    from qtpy.QtCore import QEventLoop, QTimer

    from napari_doubledip import registry

    entry = registry.get(task)
    viewer = napari.Viewer(show=True, title=f"dock opening: {task}")
    for data in entry.sample.layers(size):
        viewer.add_layer(Layer.create(*data))
    recorder = TickRecorder()
    recorder.timer.start()
    settle = QEventLoop()
    QTimer.singleShot(1000, settle.quit)
    settle.exec()
    opening = time.perf_counter()
    viewer.window.add_plugin_dock_widget(PLUGIN, entry.title)
    opened = time.perf_counter()
    wait = QEventLoop()
    QTimer.singleShot(int(1000 * seconds), wait.quit)
    wait.exec()
    recorder.timer.stop()
    ticks = np.asarray(recorder.ticks)
    ticks = ticks[ticks >= opened]  # gaps between ticks both after the dock opened
    after = 1000 * np.diff(ticks)
    viewer.close()
    return {
        "dock_opens": 1000 * (opened - opening),
        "p99": float(np.percentile(after, 99)) if after.size else float("nan"),
        "largest": float(after.max()) if after.size else float("nan"),
    }


def warm_up(tasks: list[str]) -> None:
    """Run every task two steps on a 32² sample (headless): its one-time imports happen here."""
    from napari_doubledip import api, registry

    for task in tasks:
        entry = registry.get(task)
        layers = entry.sample.layers(32)
        images = [data for data, _meta, kind in layers if kind == "image"]
        hints = [data for data, _meta, kind in layers if kind != "image"]
        args: list = [images if entry.inputs.group else images[0]]
        if entry.aux is not None and entry.aux.kind != "value":
            args.append(hints[0] if hints else None)
        for _snapshot in getattr(api, entry.stream)(*args, steps=2, device="cpu", early_stop=False):
            pass


def main(argv: list[str] | None = None) -> str:
    """Measure every task (or ``--tasks``) and print the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--tasks", default="")
    parser.add_argument("--warm", action="store_true", help="run every task briefly first (one-time costs)")
    parser.add_argument("--dock", action="store_true", help="measure opening the first task's dock widget")
    parser.add_argument("--no-preload", action="store_true", help="no background import when a widget opens")
    args = parser.parse_args(argv)

    from napari_doubledip import registry

    tasks = [t for t in args.tasks.split(",") if t] or [e.name for e in registry.entries() if e.sample]
    if args.no_preload:
        from napari_doubledip.core import preload

        global NO_PRELOAD
        NO_PRELOAD = True
        preload._started.set()  # as if it had run: nothing is imported ahead
    if args.dock:
        m = measure_dock(tasks[0], args.size)
        line = (
            f"dock opening, {tasks[0]} at {args.size}², preload {'off' if args.no_preload else 'on'}: "
            f"opens in {m['dock_opens']:.0f} ms; the next 4 s: p99 gap {m['p99']:.0f} ms, "
            f"largest {m['largest']:.0f} ms"
        )
        print(line, flush=True)
        return line
    if args.warm:
        warm_up(tasks)
    lines = [
        f"Viewer responsiveness at {args.size}², CPU, {args.seconds:g} s per task{' (warm)' if args.warm else ''} "
        f"(gaps of a {TICK_MS} ms QTimer on the GUI thread)",
        "",
        "| task | Run returns (ms) | Run blocks (ms) | p99 gap training (ms) | largest gap training (ms) "
        "| largest gap 4 s after the end (ms) | steps |",
        "|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    for task in tasks:
        m = measure(task, args.size, args.seconds)
        row = (
            f"| {task} | {m['run_returns']:.0f} | {m['run_blocks']:.0f} | {m['p99']:.0f} | "
            f"{m['largest']:.0f} | {m['after_end']:.0f} | {m['steps']:.0f} |"
        )
        lines.append(row)
        print(row, flush=True)
    return "\n".join(lines)


if __name__ == "__main__":
    main()
