"""What every task provides to the optimisation loop, and pieces tasks share."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, TypeVar

import numpy as np
import torch

from ..budget import TimeBudget
from ..conversion import ImageLayout, check_image, from_unit, pad_amounts
from ..network import NetConfig, SkipNet, resolve_net_config
from ..options import TaskOptions

__all__ = ["NoiseInput", "PaddedImage", "Result", "RunContext", "Task", "make_generator"]

# Seeds of a task's nets: ``seed * SEED_STRIDE + SALT_STRIDE * salt + NETS_STRIDE * n_nets + out_channels``.
# The strides are primes, so that nets differing in salt, count or channels get unrelated seeds
# (and the same seed, the same nets, as before these constants had names).
SEED_STRIDE = 1000003
SALT_STRIDE = 7919
NETS_STRIDE = 31

#: How :meth:`PaddedImage.pad` may pad (numpy's modes the tasks use).
PadMode = Literal["symmetric", "constant", "reflect", "edge"]
#: A task's options class.
OptionsT = TypeVar("OptionsT", bound=TaskOptions)


@dataclass(frozen=True)
class Result:
    """Base of every task's result.

    Attributes
    ----------
    history
        Per-step losses: ``{"step": array, "total": array, <term>: array, ...}``.
    params
        Every setting actually used: task options, network, seed, device, steps run, time.
    """

    history: dict[str, np.ndarray] = field(repr=False)
    params: dict[str, Any] = field(repr=False)

    def record(self) -> dict[str, Any]:
        """Values of the result beyond its images, for the CLI's sidecar (e.g. mixing weights)."""
        return {}

    def summary(self) -> str:
        """One sentence on those values for the widget's status line (``""``: nothing to add)."""
        return ""


@dataclass(frozen=True)
class RunContext:
    """Where and how a task runs: device, seed, random generator, autocast dtype, time budget.

    ``budget`` is what optional set-up work asks before it starts (see
    :class:`~napari_doubledip.core.budget.TimeBudget`).
    """

    device: torch.device
    seed: int
    generator: torch.Generator
    autocast_dtype: torch.dtype | None = None
    budget: TimeBudget = TimeBudget()

    def randn(self, *shape: int) -> torch.Tensor:
        """Seeded standard normal noise on the run's device."""
        return torch.randn(*shape, generator=self.generator, device=self.device)

    def rand(self, *shape: int) -> torch.Tensor:
        """Seeded uniform [0, 1) noise on the run's device."""
        return torch.rand(*shape, generator=self.generator, device=self.device)


def make_generator(device: torch.device, seed: int) -> torch.Generator:
    """A torch random generator on ``device`` seeded with ``seed``."""
    gen = torch.Generator(device=device if device.type != "mps" else "cpu")
    gen.manual_seed(int(seed))
    return gen


class PaddedImage:
    """A unit-range ``(C, Y, X)`` image padded (reflection) to a size the net accepts.

    Attributes
    ----------
    tensor
        ``(1, C, Yp, Xp)`` on the device.
    valid
        ``(1, 1, Yp, Xp)`` float, 1 on the image, 0 on the padding (losses ignore padding).
    """

    def __init__(self, unit: np.ndarray, multiple: int, device: torch.device) -> None:
        _, h, w = unit.shape
        self.pad_y = pad_amounts(h, multiple)
        self.pad_x = pad_amounts(w, multiple)
        self.shape = (h, w)
        padded = np.pad(unit, ((0, 0), self.pad_y, self.pad_x), mode="symmetric")
        self.tensor = torch.from_numpy(np.ascontiguousarray(padded))[None].to(device)
        valid = np.zeros(padded.shape[1:], np.float32)
        valid[self.crop] = 1.0
        self.valid = torch.from_numpy(valid)[None, None].to(device)

    @property
    def crop(self) -> tuple[slice, slice]:
        """Slices that cut the padding off a ``(..., Yp, Xp)`` array."""
        return (
            slice(self.pad_y[0], self.pad_y[0] + self.shape[0]),
            slice(self.pad_x[0], self.pad_x[0] + self.shape[1]),
        )

    @property
    def padded_shape(self) -> tuple[int, int]:
        """``(Yp, Xp)``."""
        height, width = self.tensor.shape[-2:]
        return int(height), int(width)

    def pad(self, unit: np.ndarray, mode: PadMode = "symmetric") -> np.ndarray:
        """Pad another ``(..., Y, X)`` array of the image's size the same way."""
        extra = [(0, 0)] * (unit.ndim - 2)
        return np.pad(unit, [*extra, self.pad_y, self.pad_x], mode=mode)

    def to_numpy(self, t: torch.Tensor) -> np.ndarray:
        """Crop a ``(..., Yp, Xp)`` tensor back to the image and return float32 numpy."""
        index = (..., *self.crop)
        return t[index].detach().float().cpu().numpy()

    def to_caller(self, t: torch.Tensor, layout: ImageLayout) -> np.ndarray:
        """Crop a ``(C, Yp, Xp)`` or ``(1, C, Yp, Xp)`` tensor and convert it to the caller's layout."""
        arr = self.to_numpy(t)
        if arr.ndim == 4:
            arr = arr[0]
        return from_unit(arr, layout)


class NoiseInput:
    """The fixed random input of DIP generators, with optional per-step perturbation.

    Parameters
    ----------
    ctx
        Run context (device, seeded generator).
    channels, shape
        Input channels (all nets together) and ``(Y, X)`` size.
    std
        Scale of the fixed uniform noise (the DIP papers use 0.1).
    reg_noise
        Standard deviation of the fresh Gaussian noise added each step (0 = none).
    """

    def __init__(self, ctx: RunContext, channels: int, shape: tuple[int, int], std: float, reg_noise: float):
        self.base = ctx.rand(1, channels, *shape) * std
        self.reg_noise = float(reg_noise)
        self._ctx = ctx

    def sample(self, window: tuple[slice, slice] | None = None) -> torch.Tensor:
        """The input for one training step (only its ``window`` of the frame, if given)."""
        base = self.base if window is None else self.base[..., window[0], window[1]]
        if self.reg_noise > 0:
            return base + self.reg_noise * self._ctx.randn(*base.shape)
        return base


class Task(abc.ABC, Generic[OptionsT]):
    """One DIP / Double-DIP problem: its nets, how they recombine, its losses and outputs.

    The optimisation loop (:func:`napari_doubledip.core.loop.optimise`) calls, in order,
    :meth:`setup` once, then per step :meth:`forward` and :meth:`loss`, and at snapshot time
    :meth:`outputs` on the moving averages of the forward outputs; at the end :meth:`result`.
    """

    #: Short name of the task, e.g. ``"denoise"``.
    name: ClassVar[str] = "task"
    #: Steps run when the caller gives neither ``steps`` nor ``max_seconds``.
    default_steps: ClassVar[int] = 2000
    #: Forward output watched by the windowed-variance early stop (``None``: no such stop).
    monitor_key: ClassVar[str | None] = None
    #: Steps without a new held-out minimum before an early stop (see ``validation_loss``).
    held_out_patience: ClassVar[int] = 100
    #: Steps the generators get to beat the first outputs (a guided task's classical estimate)
    #: on the held-out pixels before an early stop.
    held_out_first_patience: ClassVar[int] = 400
    #: Set by a task whose inputs changed mid-run (new hints): the loop restarts its moving
    #: averages from the next step's outputs, and clears the flag.
    outputs_changed: bool = False

    @classmethod
    def check_inputs(cls, image: Any, *others: Any, options: Any) -> None:
        """Cheap checks of a run's inputs before it starts, without converting or preparing anything.

        Shapes, dtypes, sizes, finiteness and the task's own rules on its inputs (an empty
        mask, hints of another size, ...): what the constructor would refuse, with its message,
        at a fraction of its cost (the widget calls this on the GUI thread and builds the task
        on its worker). This default checks the first input as an image; tasks with more
        inputs or rules add theirs.

        Parameters
        ----------
        image
            The task's first input.
        *others
            Its other positional inputs (a mask, hints, ...).
        options
            The task's options object (built, so already checked).

        Raises
        ------
        ValueError, TypeError
            With the constructor's message.
        """
        check_image(image)

    @abc.abstractmethod
    def setup(self, ctx: RunContext) -> None:
        """Build nets, inputs and targets on ``ctx.device``."""

    @abc.abstractmethod
    def param_groups(self) -> list[dict[str, Any]]:
        """Optimizer parameter groups (``{"params": ..., "lr": ...}``)."""

    @abc.abstractmethod
    def forward(self) -> dict[str, torch.Tensor]:
        """Run the generators for one step; return named tensors (the task's components)."""

    @abc.abstractmethod
    def loss(self, out: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and its named terms for the forward outputs ``out``."""

    @abc.abstractmethod
    def outputs(self, out: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """Numpy outputs in the caller's layout from (averaged) forward outputs."""

    @abc.abstractmethod
    def result(
        self, outputs: dict[str, np.ndarray], history: dict[str, np.ndarray], params: dict[str, Any]
    ) -> Result:
        """The task's :class:`Result` from its final outputs."""

    #: The task's validated options (set by the subclass's ``__init__``).
    opts: OptionsT

    def options(self) -> dict[str, Any]:
        """The task's settings, recorded in ``Result.params`` (JSON-friendly).

        By default the recorded options, each net followed by its resolved settings
        (``"<net>_config"``); tasks add what they derive (estimated values, shapes).
        """
        opts = getattr(self, "opts", None)
        if opts is None:
            return {}
        out: dict[str, Any] = {}
        nets = {info.name for info in opts.info() if info.net}
        for key, value in opts.record().items():
            out[key] = value
            if key in nets:
                out[f"{key}_config"] = resolve_net_config(getattr(opts, key)).to_dict()
        return out

    def stop_reason(self, step: int, losses: dict[str, float]) -> str | None:
        """A task-specific stopping rule (e.g. the discrepancy principle); ``None`` to go on."""
        return None

    def validation_loss(self, out: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """Error of (averaged) outputs on data the fit never saw, e.g. held-out pixels (``None``: none).

        When a task has one, the loop returns the outputs where it was lowest and stops the run
        once it has not improved for a while (see :class:`~napari_doubledip.core.stopping.HeldOutStop`).
        """
        return None

    def start_outputs(self) -> dict[str, torch.Tensor] | None:
        """The forward outputs before the first step, when known without running the nets (``None``: not known).

        A task whose nets start as an exact function of a classical estimate (a guided residual
        net starts at zero: its output is the guide) gives them here, and the loop shows them as
        a first snapshot as soon as :meth:`setup` has ended, before the first (slow) step.
        """
        return None

    def generators(self) -> list[tuple[NetConfig, int]]:
        """The generators :meth:`setup` builds: ``(config, number of nets of it)`` (memory estimate).

        Default: one net of every :class:`~napari_doubledip.core.network.NetConfig` attribute;
        tasks that build several nets of one config say so.
        """
        return [(value, 1) for value in vars(self).values() if isinstance(value, NetConfig)]

    def ema_keys(self) -> tuple[str, ...] | None:
        """Forward outputs to average over steps (``None``: all)."""
        return None

    @staticmethod
    def build_net(
        net: str | NetConfig | dict, out_channels: int, n_nets: int, ctx: RunContext, salt: int = 0
    ) -> SkipNet:
        """A :class:`SkipNet` on the run's device, initialised from the run's seed and ``salt``.

        Give each net of a task its own ``salt`` so that their initial weights differ.
        """
        cfg = resolve_net_config(net)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(
                int(ctx.seed) * SEED_STRIDE + SALT_STRIDE * salt + NETS_STRIDE * n_nets + out_channels
            )
            model = SkipNet(cfg, out_channels, n_nets)
        return model.to(ctx.device)
