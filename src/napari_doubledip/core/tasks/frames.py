"""The frames of a stack as one run: each frame its own reconstruction, one grouped net for all.

A GPU runs the default generator at 61-72 steps/s from 128^2 to 512^2 (BENCHMARKS.md): launch
bound, mostly idle. Frames of a stack ``(T, Y, X[, C])`` run side by side instead: every frame
keeps its own task (its classical start, held-out pixels, noise input and random patches, all
seeded as in a run of its own), and their generators become one grouped net
(:meth:`~napari_doubledip.core.network.SkipNet.stacked`), so each step launches every
convolution once for all of them. The nets do not share parameters and their losses add up, so
every frame trains as it would alone (Adam works per parameter); what they share is the step
they stop at: the held-out test sums the frames' scores, and each frame still takes only the
share of its generator's change that its own held-out pixels confirm.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from ..network import NetConfig, SkipNet
from .base import Result, RunContext, Task, make_generator
from .reconstruction import ImageReconstructionTask, drive_forward

__all__ = ["FramesResult", "FramesTask", "frame_batch_size"]


@dataclass(frozen=True)
class FramesResult(Result):
    """Result of a batch of frames.

    Attributes
    ----------
    results
        Each frame's own result, in order (its ``params`` are the batch's and the frame's own).
    """

    results: list[Result] = field(default_factory=list)


class FramesTask(Task):
    """Frames of one task, kind and size, fitted together on one grouped net.

    Parameters
    ----------
    frames
        The frames' tasks (built, not set up): one class, equal options, equal image shapes.
    """

    def __init__(self, frames: list[ImageReconstructionTask]) -> None:
        if not frames:
            raise ValueError("a batch of frames needs at least one frame")
        first = frames[0]
        if not isinstance(first, ImageReconstructionTask):
            raise TypeError(
                f"only single-image reconstructions batch their frames, not {type(first).__name__}"
            )
        for other in frames[1:]:
            if type(other) is not type(first) or other.opts != first.opts:
                raise ValueError("the frames of a batch must be one task with the same options")
            if other.unit.shape != first.unit.shape:
                raise ValueError(
                    f"the frames of a batch must have one size: {other.unit.shape} vs {first.unit.shape}"
                )
        self.frames = frames
        self.name = first.name  # type: ignore[misc]
        self.default_steps = first.default_steps  # type: ignore[misc]
        self.monitor_key = first.monitor_key  # type: ignore[misc]
        self.held_out_patience = first.held_out_patience  # type: ignore[misc]
        self.held_out_first_patience = first.held_out_first_patience  # type: ignore[misc]
        self.opts = first.opts
        self.layout = first.layout
        self.layouts = [frame.layout for frame in frames]  # for the memory estimate

    def setup(self, ctx: RunContext) -> None:
        """Set up every frame as in a run of its own, then stack their nets into one."""
        for frame in self.frames:
            # each frame its own random stream, seeded as a run of that frame alone would be
            frame.setup(replace(ctx, generator=make_generator(ctx.device, ctx.seed)))
        self.net = SkipNet.stacked([frame.net for frame in self.frames])
        for frame in self.frames:
            del frame.net  # the grouped net holds its weights now

    def param_groups(self) -> list[dict[str, Any]]:
        """The grouped net's parameters at the frames' learning rate."""
        return [{"params": list(self.net.parameters()), "lr": self.frames[0].opts.lr}]

    def forward(self) -> dict[str, torch.Tensor]:
        """Every frame's step, its net calls run once for all frames; the outputs stacked along the batch axis."""
        outs = drive_forward([frame.forward_calls() for frame in self.frames], self.net)
        return {key: torch.cat([out[key] for out in outs]) for key in outs[0]}

    @staticmethod
    def _frame(out: dict[str, torch.Tensor], t: int) -> dict[str, torch.Tensor]:
        return {key: value[t : t + 1] for key, value in out.items()}

    def loss(self, out: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The sum of the frames' losses (each frame's gradient is its own run's), and of their terms."""
        total: torch.Tensor | None = None
        terms: dict[str, torch.Tensor] = {}
        for t, frame in enumerate(self.frames):
            value, parts = frame.loss(self._frame(out, t), step)
            total = value if total is None else total + value
            for key, part in parts.items():
                terms[key] = part if key not in terms else terms[key] + part
        assert total is not None
        return total, terms

    def validation_loss(self, out: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """The sum of the frames' held-out scores (``None`` without held-out pixels)."""
        scores = [frame.validation_loss(self._frame(out, t)) for t, frame in enumerate(self.frames)]
        if any(score is None for score in scores):
            return None
        return torch.stack([torch.as_tensor(s, dtype=torch.float32) for s in scores]).sum()

    def start_outputs(self) -> dict[str, torch.Tensor] | None:
        """The frames' starts, stacked (``None`` when a frame has none)."""
        starts = [frame.start_outputs() for frame in self.frames]
        if any(start is None for start in starts):
            return None
        return {key: torch.cat([s[key] for s in starts if s is not None]) for key in starts[0] or {}}

    def ema_keys(self) -> tuple[str, ...] | None:
        """The frames' averaged outputs."""
        return self.frames[0].ema_keys()

    def outputs(self, out: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """Each frame's outputs, stacked along a new first axis."""
        per_frame = [frame.outputs(self._frame(out, t)) for t, frame in enumerate(self.frames)]
        return {key: np.stack([outputs[key] for outputs in per_frame]) for key in per_frame[0]}

    def result(
        self, outputs: dict[str, np.ndarray], history: dict[str, np.ndarray], params: dict[str, Any]
    ) -> FramesResult:
        """Each frame's own result, its params the batch's with the frame's own settings."""
        results = [
            frame.result(
                {key: value[t] for key, value in outputs.items()}, history, {**params, **frame.options()}
            )
            for t, frame in enumerate(self.frames)
        ]
        return FramesResult(history=history, params=params, results=results)

    def options(self) -> dict[str, Any]:
        """The first frame's settings and the batch's size."""
        return {**self.frames[0].options(), "frames_batched": len(self.frames)}

    def generators(self) -> list[tuple[NetConfig, int]]:
        """One generator per frame."""
        return [(cfg, n * len(self.frames)) for cfg, n in self.frames[0].generators()]


def frame_batch_size(
    task_class: type,
    frames: int,
    per_frame_bytes: int | None,
    device: torch.device,
    batch: int | str = "auto",
) -> int:
    """How many frames of a stack to run side by side.

    Parameters
    ----------
    task_class
        The frames' task class: only single-image reconstructions batch (others: 1).
    frames
        Frames to run.
    per_frame_bytes
        The memory one frame's run needs (:func:`~napari_doubledip.core.memory.estimate_task_bytes`;
        ``None``: unknown).
    device
        Where the run goes.
    batch
        ``"auto"``: on a CUDA GPU as many as fit in 80% of its free memory (one frame after the
        other elsewhere: on a CPU the grouped net ran 1.01-1.16x the speed of separate nets,
        BENCHMARKS.md, and the memory grows with each frame); a number: at most that many.

    Returns
    -------
    int
        At least 1 and at most ``frames``.
    """
    if batch != "auto" and (isinstance(batch, bool) or not isinstance(batch, int | np.integer) or batch < 1):
        raise ValueError(f"batch_frames must be 'auto' or a positive whole number, got {batch!r}")
    if not issubclass(task_class, ImageReconstructionTask) or frames <= 1:
        return 1
    if batch != "auto":
        return int(min(int(batch), frames))
    if device.type != "cuda" or not per_frame_bytes:
        return 1
    from ..memory import available_memory

    free = available_memory(device)
    if free is None:
        return 1
    return int(max(1, min(frames, (0.8 * free) // per_frame_bytes)))
