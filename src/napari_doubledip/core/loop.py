"""THE optimisation loop: one generator serves the blocking API, the CLI and the napari worker."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Generator
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from .adam import FusedAdam, fused_adam_available
from .budget import StopFlag, TimeBudget
from .devices import configure_cpu_threads, resolve_device
from .snapshot import EXPECTATION_AFTER_STEPS, EXPECTATION_SECONDS, Snapshot
from .stopping import HeldOutStop, WindowedVariance
from .tasks.base import Result, RunContext, Task, make_generator

__all__ = [
    "CPU_BF16_MIN_PARAMS",
    "EXPECTATION_SECONDS",
    "HeldOutStop",
    "NonFiniteLossError",
    "Snapshot",
    "StopFlag",
    "WindowedVariance",
    "cpu_has_native_bf16",
    "largest_net_params",
    "ema_decay",
    "make_optimizer",
    "optimise",
    "run_to_end",
]


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite: the run cannot go on.

    Attributes
    ----------
    snapshot
        The last snapshot yielded before it happened (finite outputs), or ``None``.
    """

    def __init__(self, message: str, snapshot: Snapshot | None) -> None:
        super().__init__(message)
        self.snapshot = snapshot


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX), as torch reports it.

    Without it, bfloat16 convolutions are emulated and slower than float32.
    """
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    for name in checks:
        fn = getattr(cpu, name, None)
        try:
            if fn is not None and fn():
                return True
        except RuntimeError:  # pragma: no cover - defensive: the probe itself failed
            pass
    return False


#: On CPU, ``precision="auto"`` uses bfloat16 only when the task's largest generator has at
#: least this many parameters (:func:`largest_net_params`). Measured (benchmarks/speed.py --precision-check, BENCHMARKS.md): on "dip-classic"
#: (2.2 M parameters) bfloat16 autocast ran 1.4x faster and tracked the float32 PSNR-vs-steps
#: curve within 0.1 dB; on the 152 k-parameter default net it gave no speed and cost 0.45 dB
#: in inpainting (its convolutions are too small for the casts to pay).
CPU_BF16_MIN_PARAMS = 1_000_000


def largest_net_params(task: Task, groups: list[dict[str, Any]]) -> int:
    """Parameters of the task's largest single generator.

    Looks for :class:`~napari_doubledip.core.network.SkipNet` attributes of the task (a SkipNet
    of ``n_nets`` generators counts as one of them); a task without any counts all its
    trainable parameters.
    """
    from .network import SkipNet

    found = []
    for value in vars(task).values():
        items = (
            value.values()
            if isinstance(value, dict)
            else value
            if isinstance(value, list | tuple)
            else [value]
        )
        for item in items:
            if isinstance(item, SkipNet):
                found.append(sum(p.numel() for p in item.parameters()) // item.n_nets)
    if found:
        return max(found)
    return sum(p.numel() for g in groups for p in g["params"])


def _autocast_dtype(precision: str, device: torch.device, n_params: int | None = None) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (``None``: plain float32).

    ``"auto"`` means bfloat16 on CUDA GPUs that support it, and on CPUs with native bfloat16
    (:func:`cpu_has_native_bf16`) for nets of at least :data:`CPU_BF16_MIN_PARAMS` parameters
    (``n_params``; ``None`` = not known yet); float32 elsewhere (MPS, older CPUs, small nets).
    """
    if precision == "float32":
        return None
    if precision == "bfloat16":
        return torch.bfloat16
    if precision == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        if device.type == "cpu" and cpu_has_native_bf16():
            if n_params is None or n_params >= CPU_BF16_MIN_PARAMS:
                return torch.bfloat16
        return None
    raise ValueError(f"precision must be 'auto', 'float32' or 'bfloat16', got {precision!r}")


def make_optimizer(groups: list[dict[str, Any]], device: torch.device) -> torch.optim.Optimizer | FusedAdam:
    """Adam over the task's parameter groups; the fused kernel where torch has one for ``device``.

    The fused CPU kernel took a third of the time of the default (foreach) one per step. Where
    it exists, :class:`~napari_doubledip.core.adam.FusedAdam` runs it without
    ``torch.optim`` (same parameters bit for bit, and no 2-4 s import of ``torch._dynamo``
    on a process's first run); elsewhere ``torch.optim.Adam``.
    """
    if fused_adam_available(device):
        return FusedAdam(groups)
    if device.type in ("cpu", "cuda"):  # pragma: no cover - older torch
        try:
            return torch.optim.Adam(groups, fused=True)
        except (RuntimeError, TypeError, ValueError):
            pass
    return torch.optim.Adam(groups)


def ema_decay(ema: float, step: int) -> float:
    """Decay of the output average after ``step`` steps.

    It ramps up as ``(1 + step) / (10 + step)`` to ``ema``, so the average does not drag the
    random first outputs along for hundreds of steps.
    """
    return min(ema, (1.0 + step) / (10.0 + step))


def optimise(
    task: Task,
    *,
    steps: int | None = None,
    max_seconds: float | None = None,
    early_stop: bool = True,
    device: str | torch.device = "auto",
    seed: int = 0,
    ema: float = 0.99,
    snapshot_every: int = 1,
    min_interval: float = 0.3,
    stop: StopFlag | None = None,
    threads: int | None = None,
    precision: str = "auto",
    es_window: int = 16,
    es_patience: int = 400,
) -> Generator[Snapshot, None, Result]:
    """Fit a task's generators, yielding :class:`Snapshot` objects; return the task's result.

    Parameters
    ----------
    task
        The problem (see :class:`~napari_doubledip.core.tasks.base.Task`).
    steps, max_seconds
        Caps on steps and wall time; with neither, the task's ``default_steps`` apply. A step
        that would end past ``max_seconds`` (by the last step's time) is not started, and
        optional set-up work asks the time left first (:class:`~napari_doubledip.core.budget.TimeBudget`).
    early_stop
        Use the task's stopping rule and the windowed-variance rule.
    device
        ``"auto"`` (CUDA, MPS, CPU) or a torch device string.
    seed
        Seeds the nets' weights, their inputs and the per-step noise.
    ema
        Decay of the exponential moving average of the outputs (0 = none); it ramps up to
        this value over the first steps (:func:`ema_decay`).
    snapshot_every, min_interval
        Yield at most every ``snapshot_every`` steps and at most once per ``min_interval``
        seconds; a final snapshot always comes.
    stop
        Checked between steps; when set, the run ends with a final snapshot.
    threads
        CPU threads for torch (``None``: leave as is).
    precision
        ``"auto"`` (bfloat16 autocast on CUDA, and on CPUs with native bfloat16 for generators
        of :data:`CPU_BF16_MIN_PARAMS` parameters or more; float32 elsewhere), ``"float32"``,
        ``"bfloat16"``.
    es_window, es_patience
        Settings of the windowed-variance stop (frames kept, steps without improvement).

    Yields
    ------
    Snapshot
        Progress and current outputs; the generator's return value is the task's ``Result``.
    """
    if steps is not None and steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds must be > 0, got {max_seconds}")
    if not 0 <= ema < 1:
        raise ValueError(f"ema must be in [0, 1), got {ema}")
    if steps is None and max_seconds is None:
        steps = task.default_steps
    t0 = time.perf_counter()
    dev = resolve_device(device)
    threads_used = configure_cpu_threads(threads) if dev.type == "cpu" else None
    amp = _autocast_dtype(precision, dev)
    budget = TimeBudget(stop=stop, deadline=None if max_seconds is None else t0 + max_seconds)
    ctx = RunContext(
        device=dev, seed=int(seed), generator=make_generator(dev, seed), autocast_dtype=amp, budget=budget
    )
    try:
        task.setup(ctx)
        groups = task.param_groups()
        if precision == "auto" and amp is not None:  # the CPU policy depends on the nets' size
            amp = _autocast_dtype(precision, dev, largest_net_params(task, groups))
        optimizer = make_optimizer(groups, dev)
        averages: dict[str, torch.Tensor] = {}
        ema_keys = task.ema_keys()
        held_out = HeldOutStop(
            min_patience=task.held_out_patience, first_patience=task.held_out_first_patience
        )
        stopper = (
            WindowedVariance(window=es_window, patience=es_patience)
            if (early_stop and task.monitor_key is not None)
            else None
        )
        best: dict[str, torch.Tensor] | None = None
        use_best = False  # the final outputs are ``best`` (not the latest averages)
        held_out_mode = False  # the task judges its outputs on held-out pixels
        pending: list[dict[str, torch.Tensor]] = []
        history: dict[str, list[float]] = {}
        latest: dict[str, float] = {}
        flush_every = 1 if dev.type == "cpu" else 20
        step = 0
        last_yield = -float("inf")
        last_yielded: Snapshot | None = None
        reason: str | None = None
        autocast = (
            (lambda: torch.autocast(dev.type, dtype=amp)) if amp is not None else contextlib.nullcontext
        )

        def flush() -> None:
            if not pending:
                return
            names = list(pending[0])
            values = torch.stack([torch.stack([p[n] for n in names]) for p in pending]).cpu().numpy()
            if not np.isfinite(values).all():
                bad = [n for j, n in enumerate(names) if not np.isfinite(values[:, j]).all()]
                raise NonFiniteLossError(
                    f"the loss became NaN or infinite ({', '.join(bad)}) by step {step}: lower the learning "
                    "rate (lr) or check the input for extreme values; the outputs keep the last finite "
                    "snapshot",
                    last_yielded,
                )
            first = step - len(pending) + 1
            history.setdefault("step", []).extend(range(first, step + 1))
            for j, n in enumerate(names):
                history.setdefault(n, []).extend(values[:, j].tolist())
                latest[n] = float(values[-1, j])
            pending.clear()

        def expected_seconds() -> float | None:
            if step < EXPECTATION_AFTER_STEPS or first_step_at is None:
                return None
            per_step = (time.perf_counter() - first_step_at) / step
            typical = (
                task.held_out_first_patience + task.held_out_patience
                if (held_out_mode and early_stop)
                else task.default_steps
            )
            total_steps = typical if steps is None else min(typical, steps)
            expected = (first_step_at - t0) + total_steps * per_step
            return expected if max_seconds is None else min(expected, max_seconds)

        def snapshot(done: bool, start: dict[str, torch.Tensor] | None = None) -> Snapshot:
            # with held-out pixels every snapshot shows the best outputs so far: what Stop returns
            source = best if (best is not None and use_best and (done or held_out_mode)) else averages
            if start is not None:
                source = start
            with torch.no_grad():
                outs = task.outputs(source)
            for arr in outs.values():
                arr.flags.writeable = False
            return Snapshot(
                step=step,
                total=steps,
                elapsed=time.perf_counter() - t0,
                max_seconds=max_seconds,
                losses=MappingProxyType(dict(latest)),
                outputs=MappingProxyType(outs),
                done=done,
                reason=reason,
                expected_seconds=expected_seconds(),
                device=dev.type,
            )

        first_step_at: float | None = None
        last_step_seconds = 0.0
        start = task.start_outputs()
        if start is not None and not (stop is not None and stop.is_set()):
            # the outputs as they stand before the first step (e.g. the classical estimate a
            # guided net starts from): shown at once, rather than after a first step that takes
            # seconds on a large frame
            last_yield = time.perf_counter()
            last_yielded = snapshot(False, start)
            yield last_yielded
        while True:
            if stop is not None and stop.is_set():
                reason = "stopped"
                break
            if steps is not None and step >= steps:
                reason = "steps"
                break
            if max_seconds is not None and time.perf_counter() - t0 + last_step_seconds >= max_seconds:
                # out of time, or the next step would end past it (a step on a large frame can
                # take seconds on a CPU)
                reason = "time"
                break
            step_began = time.perf_counter()
            if first_step_at is None:
                first_step_at = step_began
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                out = task.forward()
                total, terms = task.loss(out, step)
            total.backward()
            optimizer.step()
            step += 1
            with torch.no_grad():
                if task.outputs_changed:  # new inputs mid-run (re-hinting)
                    task.outputs_changed = False
                    averages.clear()
                decay = ema_decay(ema, step)
                for key, value in out.items():
                    if ema_keys is not None and key not in ema_keys:
                        continue
                    value = value.detach().float()
                    if key not in averages or decay <= 0:
                        averages[key] = value.clone()
                    else:
                        averages[key].lerp_(value, 1 - decay)
                pending.append(
                    {"total": total.detach().float(), **{k: v.detach().float() for k, v in terms.items()}}
                )
                if step == 1:
                    # the first outputs (a guided net's start: the classical estimate) compete too
                    first = task.validation_loss(averages)
                    if first is not None:
                        stopper, use_best, held_out_mode = None, True, True
                        held_out.update(0, float(first))
                        best = {k: v.clone() for k, v in averages.items()}
                if use_best and step % held_out.every == 0:
                    score = task.validation_loss(averages)
                    assert score is not None  # use_best comes with a task that has held-out pixels
                    improved, exhausted = held_out.update(step, float(score))
                    if improved:
                        best = {k: v.clone() for k, v in averages.items()}
                    if exhausted and early_stop:
                        reason = "early-stop"
                if stopper is not None and task.monitor_key is not None:
                    improved, exhausted = stopper.update(step, out[task.monitor_key])
                    if improved:
                        best = {k: v.clone() for k, v in averages.items()}
                    if exhausted:
                        reason = "early-stop"
                        use_best = True
            last_step_seconds = time.perf_counter() - step_began  # with its held-out checks
            if step % flush_every == 0 or reason is not None:
                flush()
                if early_stop and reason is None:
                    task_reason = task.stop_reason(step, latest)
                    if task_reason is not None:
                        reason = "early-stop"
                        use_best = False
            if reason is not None:
                break
            now = time.perf_counter()
            if step % snapshot_every == 0 and now - last_yield >= min_interval:
                flush()
                last_yield = now
                last_yielded = snapshot(False)
                yield last_yielded
        flush()
        if not averages and start is not None:  # stopped before the first step: where the nets start
            averages = dict(start)
        if not averages:  # stopped (or out of time) before the first step: the nets' first outputs
            with torch.no_grad(), autocast():
                first_out = task.forward()
            averages = {
                k: v.detach().float() for k, v in first_out.items() if ema_keys is None or k in ema_keys
            }
        final = snapshot(True)
        yield final
        params = {
            "task": task.name,
            **task.options(),
            "seed": int(seed),
            "device": str(dev),
            "threads": threads_used,
            "precision": "float32" if amp is None else str(amp).replace("torch.", ""),
            "steps_cap": steps,
            "max_seconds": max_seconds,
            "early_stop": early_stop,
            "ema": ema,
            "steps_run": step,
            "best_step": held_out.best_step if held_out.best < float("inf") else None,
            "held_out_mse": held_out.best if held_out.best < float("inf") else None,
            "stop_reason": reason,
            "seconds": round(final.elapsed, 3),
            "final_losses": dict(latest),
        }
        hist = {k: np.asarray(v, dtype=np.int64 if k == "step" else np.float64) for k, v in history.items()}
        return task.result(dict(final.outputs), hist, params)
    finally:
        if dev.type == "cuda":
            torch.cuda.empty_cache()


def run_to_end(
    stream: Generator[Snapshot, None, Result],
    callback: Callable[[Snapshot], Any] | None = None,
    stop: Any = None,
) -> Result:
    """Drive a snapshot generator to its end and return its result.

    ``callback(snapshot)`` is called for every snapshot; returning ``False`` asks the run
    to stop (it still yields a final snapshot and returns its result). ``stop`` is the
    flag the stream checks (set here when the callback returns ``False``).
    """
    while True:
        try:
            snap = next(stream)
        except StopIteration as end:
            return end.value
        if callback is not None and callback(snap) is False:
            if stop is None:
                raise ValueError("callback asked to stop, but the stream has no stop flag")
            stop.set()
