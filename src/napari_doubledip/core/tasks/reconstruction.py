"""Fitting one DIP generator to one image through a pixel weight: the base of denoising and inpainting."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import torch

from ...registry.denoise import ReconstructionOptions
from ..conversion import check_image, to_unit
from ..guides import holdout_mask
from ..network import SkipNet, resolve_net_config
from .base import NoiseInput, PaddedImage, Result, RunContext, Task

__all__ = ["ImageReconstructionTask", "ImageResult", "drive_forward", "weighted_mse"]


@dataclass(frozen=True)
class ImageResult(Result):
    """Result of a single-image task.

    Attributes
    ----------
    image
        The restored image, with the input's shape, dtype and value range.
    """

    image: np.ndarray = None  # type: ignore[assignment]


def drive_forward(
    calls: list[Generator[tuple[torch.Tensor, bool], torch.Tensor, dict[str, torch.Tensor]]], net: SkipNet
) -> list[dict[str, torch.Tensor]]:
    """Run the forward passes ``calls`` of one step (see :meth:`ImageReconstructionTask.forward_calls`) on ``net``.

    With one call, ``net`` is its task's own; with several (the frames of a stack), ``net`` holds
    one generator per call (:meth:`~napari_doubledip.core.network.SkipNet.stacked`) and every
    net call of the step runs once for all of them, their inputs side by side.
    """
    requests = [next(call) for call in calls]
    results: list[dict[str, torch.Tensor] | None] = [None] * len(calls)
    while True:
        grad = requests[0][1]
        if any(r[1] != grad or r[0].shape != requests[0][0].shape for r in requests):
            raise RuntimeError("the frames of a batch asked for different net calls")
        x = requests[0][0] if len(requests) == 1 else torch.cat([r[0] for r in requests], dim=1)
        with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
            y = net(x)
        pending = []
        for t, call in enumerate(calls):
            try:
                pending.append(call.send(y[:, t]))
            except StopIteration as end:
                results[t] = end.value
        if not pending:
            return [r for r in results if r is not None]
        if len(pending) != len(calls):
            raise RuntimeError("the frames of a batch asked for different net calls")
        requests = pending


def weighted_mse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the pixels where ``weight`` > 0 (weights broadcast over channels)."""
    err = (pred.float() - target) ** 2 * weight
    return err.sum() / (weight.sum() * pred.shape[-3]).clamp_min(1.0)


class ImageReconstructionTask(Task):
    """One generator fitted to one image, the loss weighted per pixel.

    Parameters
    ----------
    image
        The corrupted image (see :func:`~napari_doubledip.core.conversion.to_unit`).
    options, **kwargs
        :class:`~napari_doubledip.registry.denoise.ReconstructionOptions` (net, lr, reg_noise,
        input_std, guide, holdout), as an object and/or keywords. With a ``guide`` the
        generator takes the task's classical estimate (non-local means for denoising,
        biharmonic filling for inpainting) as an extra input and outputs a correction to it, or
        competes with it (see :mod:`~napari_doubledip.core.guides`). ``holdout`` is the share of
        the fitted pixels left out of the fit to judge it: the run keeps the output with the
        lowest error on them and stops when it has not improved for a while.
    """

    monitor_key = "image"
    #: Guide names this task accepts besides ``"none"`` (``"auto"`` means the first).
    guides: tuple[str, ...] = ()
    #: Whether the generator takes the guide as input and outputs a correction to it (denoising),
    #: or fits the data from noise alone and only competes with the guide (inpainting, where the
    #: guide already equals the data at every fitted pixel and leaves nothing to correct).
    guide_as_input: bool = True
    #: With the guide as input: output ``guide + correction`` (the correction starting at 0), or
    #: the generator's own output (a sigmoid), which it learns to build from the guide.
    guide_residual: bool = True

    #: The options dataclass of the task.
    options_class: ClassVar[type[ReconstructionOptions]] = ReconstructionOptions

    def __init__(
        self, image: np.ndarray, *, options: ReconstructionOptions | None = None, **kwargs: Any
    ) -> None:
        self.opts = self.options_class.build(options, **kwargs)
        self.unit, self.layout = to_unit(image)
        self.net_config = resolve_net_config(self.opts.net)
        self.guide_name = self.pick_guide(self.opts)
        self.holdout = float(getattr(self.opts, "holdout", 0.0))

    @classmethod
    def pick_guide(cls, opts: Any) -> str:
        """The guide ``opts`` ask for (``"auto"``: the task's first); raises for one it does not have."""
        # a subclass whose options have no guide / holdout (plain GeneratorOptions) is a plain DIP
        guide = getattr(opts, "guide", "none")
        choices = ("auto", "none", *cls.guides)
        if guide not in choices:
            raise ValueError(f"guide must be one of {choices} for {cls.name}, got {guide!r}")
        if guide == "auto":
            guide = cls.guides[0] if cls.guides else "none"
        return str(guide)

    @classmethod
    def check_inputs(cls, image: Any, *others: Any, options: Any) -> None:
        """The image (shape, dtype, size, finite values) and the guide option, without converting anything."""
        check_image(image)
        cls.pick_guide(options)

    def fitted_pixels(self) -> np.ndarray | None:
        """``(Y, X)`` pixels the loss may fit (``None``: all); held-out pixels are drawn from these."""
        return None

    def compute_guide(self, unit: np.ndarray, unseen: np.ndarray) -> np.ndarray:
        """The classical estimate ``(C, Y, X)`` from ``unit``, whose ``unseen`` pixels it must not use."""
        raise NotImplementedError(f"{type(self).__name__} has no guide")

    def setup(self, ctx: RunContext) -> None:
        """Pad the image, draw the held-out pixels, compute the guide, build the net and its input."""
        self.ctx = ctx
        self.image = PaddedImage(self.unit, self.net_config.size_multiple, ctx.device)
        fitted = self.fitted_pixels()
        shape = self.unit.shape[1:]
        held = (
            holdout_mask(shape, self.holdout, ctx.seed, fitted) if self.holdout > 0 else np.zeros(shape, bool)
        )
        if fitted is not None and held.sum() == fitted.sum():  # a tiny image: keep something to fit
            held[:] = False
        self.held_out = held

        def padded_weight(pixels: np.ndarray) -> torch.Tensor:
            w = torch.from_numpy(self.image.pad(pixels.astype(np.float32), mode="constant"))
            return self.image.valid * w[None, None].to(ctx.device)

        fit = ~held if fitted is None else (fitted & ~held)
        self.weight = padded_weight(fit)
        self.held_weight = padded_weight(held) if held.any() else None
        # two halves of the held-out pixels: the blend weight judged on one half is fitted on the
        # other, so the held-out error of a blend is measured on pixels its fit never used
        half = holdout_mask(shape, 0.5, ctx.seed + 1) & held
        self.held_halves = (padded_weight(half), padded_weight(held & ~half)) if held.any() else None
        n_in = self.net_config.input_depth
        cfg = self.net_config
        self.guide = None
        self.guide_shift = None
        if self.guide_name != "none":
            missing = np.zeros(shape, bool) if fitted is None else ~fitted
            guide = self.compute_guide(self.unit, held | missing)
            self.guide = self._padded(guide)
            if held.any():
                # the fit's guide never saw the held-out pixels; the returned image is built on
                # the guide from all pixels (better at the held-out pixels themselves)
                self.guide_shift = self._padded(self.compute_guide(self.unit, missing) - guide)
            if self.guide_as_input:
                # the generator sees the guide beside its noise and outputs a correction to it
                cfg = replace(cfg, input_depth=n_in + self.layout.channels)
                if self.guide_residual:
                    cfg = replace(cfg, need_sigmoid=False)
        self._guide_held_errors = (
            self._held_out_errors(self.guide)
            if self.guide is not None and self.held_weight is not None
            else None
        )
        self.net = self.build_net(cfg, self.layout.channels, 1, ctx)
        if self.guide is not None and self.guide_as_input and self.guide_residual:
            self.net.zero_output()
        self.z = NoiseInput(ctx, n_in, self.image.padded_shape, self.opts.input_std, self.opts.reg_noise)
        self._setup_patches()

    #: Steps between full-frame outputs while training on patches, as a multiple of the frame's
    #: area over the patch's: a full forward pass (no gradient) costs about a third of a
    #: training step on the same pixels, so this keeps it near a tenth of the run.
    FULL_FRAME_EVERY = 0.35

    def _setup_patches(self) -> None:
        """Decide whether training steps fit random patches (large images) or the whole frame."""
        multiple = self.net_config.size_multiple
        patch = int(getattr(self.opts, "patch", 0))
        yp, xp = self.image.padded_shape
        self.patch_size: tuple[int, int] | None = None
        # patches need the guide as the net's input: a generator that builds the image from its
        # noise input alone must memorise every pixel, and random patches never let it converge
        # (measured: 13 dB after 1400 steps at 512^2, BENCHMARKS.md)
        guided_input = self.guide is not None and self.guide_as_input
        if patch > 0 and guided_input:
            # at least two cells of the coarsest level (batch norm needs more than one value there)
            side = max(2 * multiple, (patch // multiple) * multiple)
            size = (min(side, yp), min(side, xp))
            if size[0] * size[1] * 2 <= yp * xp:  # only worth it when the frame is over twice as big
                self.patch_size = size
        self.full_frame_every = (
            max(1, round(self.FULL_FRAME_EVERY * yp * xp / (self.patch_size[0] * self.patch_size[1])))
            if self.patch_size
            else 1
        )
        self._full_frame: torch.Tensor | None = None
        self._steps = 0

    def _random_window(self) -> tuple[slice, slice]:
        """A random patch window, its corner on the net's size multiple (seeded by the run)."""
        multiple = self.net_config.size_multiple
        assert self.patch_size is not None
        (ph, pw), (yp, xp) = self.patch_size, self.image.padded_shape

        def corner(free: int) -> int:
            cells = free // multiple + 1
            return multiple * int(
                torch.randint(0, cells, (1,), generator=self.ctx.generator, device=self.ctx.device)
            )

        y0, x0 = corner(yp - ph), corner(xp - pw)
        return slice(y0, y0 + ph), slice(x0, x0 + pw)

    def _padded(self, unit: np.ndarray) -> torch.Tensor:
        """A ``(C, Y, X)`` array padded like the image, as a ``(1, C, Yp, Xp)`` tensor on the device."""
        return torch.from_numpy(np.ascontiguousarray(self.image.pad(unit), dtype=np.float32))[None].to(
            self.ctx.device
        )

    #: ``(1, 1, Yp, Xp)`` weight of the generator's departure from the guide per pixel (``None``:
    #: everywhere), set by a task that only trusts the held-out test on part of the image.
    departure_weight: torch.Tensor | None = None

    def _departure(self, image: torch.Tensor) -> torch.Tensor:
        """The generator's departure from the guide, where the task lets it depart."""
        assert self.guide is not None
        diff = image.float() - self.guide
        return diff if self.departure_weight is None else diff * self.departure_weight

    def _fit_blend(self, image: torch.Tensor, pixels: torch.Tensor | None) -> torch.Tensor | float:
        """Weight ``w`` in [0, 1] of the generator against the guide: ``guide + w (image - guide)``.

        Fitted by least squares on ``pixels`` (a padded 0/1 weight: held-out pixels, which neither
        saw), so it measures how much of the generator's departure from the classical estimate the
        unseen data confirm: 0 while the generator is worse than the guide, towards 1 as it gets
        better. Without such pixels (``None``) or a guide: 1.
        """
        guide = self.guide
        if pixels is None or guide is None:
            return 1.0
        diff = self._departure(image) * pixels
        gap = (self.image.tensor - guide) * pixels
        return ((diff * gap).sum() / (diff * diff).sum().clamp_min(1e-12)).clamp(0.0, 1.0)

    def _combined(self, out: dict[str, torch.Tensor], shifted: bool) -> torch.Tensor:
        image = out["image"].float()
        if self.guide is None:
            return image.clamp(0, 1)
        w = self._fit_blend(image, self.held_weight)
        base = self.guide + self.guide_shift if (shifted and self.guide_shift is not None) else self.guide
        return (base + w * self._departure(image)).clamp(0, 1)

    def _cross_fitted(self, out: dict[str, torch.Tensor]) -> torch.Tensor:
        """The blend judged on held-out pixels: each half's weight fitted on the other half."""
        image = out["image"].float()
        assert self.guide is not None and self.held_halves is not None
        first, second = self.held_halves
        w = self._fit_blend(image, second) * first + self._fit_blend(image, first) * second
        return (self.guide + w * self._departure(image)).clamp(0, 1)

    def final_image(self, out: dict[str, torch.Tensor]) -> torch.Tensor:
        """The returned ``(1, C, Yp, Xp)`` image in [0, 1] from (averaged) forward outputs.

        Without a guide: the generator's output. With one: the guide (from all pixels) plus the
        share of the generator's departure from it that the held-out pixels confirm; the guide
        alone where the output is not significantly better than it on those pixels
        (:meth:`guide_preferred`).
        """
        if self.guide_preferred(out):
            assert self.guide is not None
            shift = self.guide_shift
            return (self.guide if shift is None else self.guide + shift).clamp(0, 1)
        return self._combined(out, shifted=True)

    def guide_preferred(self, out: dict[str, torch.Tensor]) -> bool:
        """Whether the held-out pixels fail to confirm ``out`` over the guide (:meth:`validation_loss`).

        The returned image is then the guide itself: a share of the generator's departure fitted
        on the same pixels it is judged on looks better there by construction, and added to an
        unconfirmed output it costs quality (moon, 128^2, 50% missing: 0.01 dB under biharmonic
        filling at the best step, 0).
        """
        if self.guide is None or self._guide_held_errors is None:
            return False
        score = self.validation_loss(out)
        assert score is not None
        return bool(score >= self._guide_held_errors.mean() / out["image"].shape[-3])

    def param_groups(self) -> list[dict[str, Any]]:
        """The generator's parameters at the learning rate ``lr``."""
        return [{"params": list(self.net.parameters()), "lr": self.opts.lr}]

    def _net_input(self, z: torch.Tensor, window: tuple[slice, slice] | None) -> torch.Tensor:
        """The net's input for noise ``z`` on ``window`` of the frame (or all of it): with the guide beside it."""
        if self.guide is None or not self.guide_as_input:
            return z
        guide = self.guide if window is None else self.guide[..., window[0], window[1]]
        return torch.cat([z, guide], dim=1)

    def _net_output(self, y: torch.Tensor, window: tuple[slice, slice] | None) -> torch.Tensor:
        """The image from the net's ``(1, C, y, x)`` output ``y`` (a residual is added to the guide)."""
        if self.guide is None or not (self.guide_as_input and self.guide_residual):
            return y
        guide = self.guide if window is None else self.guide[..., window[0], window[1]]
        return guide + y

    def forward_calls(self) -> Generator[tuple[torch.Tensor, bool], torch.Tensor, dict[str, torch.Tensor]]:
        """One step's forward pass as net calls: yields ``(net input, with gradient)``, is sent the net's output.

        The image (full frame), and on large images the patch the step trains on. Written this
        way so that the frames of a stack can share one grouped net (:func:`drive_forward`).
        """
        if self.patch_size is None:
            y = yield self._net_input(self.z.sample(), None), True
            return {"image": self._net_output(y, None)}
        # a training step on a random patch; the full frame (the outputs) every few steps
        if self._full_frame is None or self._steps % self.full_frame_every == 0:
            y = yield self._net_input(self.z.base, None), False
            self._full_frame = self._net_output(y, None).detach()
        self._steps += 1
        window = self._random_window()
        z = self.z.sample(window)
        self._window = window
        y = yield self._net_input(z, window), True
        return {"image": self._full_frame, "patch": self._net_output(y, window)}

    def forward(self) -> dict[str, torch.Tensor]:
        """One step's image (full frame), and on large images the patch the step trains on."""
        return drive_forward([self.forward_calls()], self.net)[0]

    def start_outputs(self) -> dict[str, torch.Tensor] | None:
        """The guide: what a run stopped before its first step returns.

        A residual net starts there (its last layer at zero); a competing generator
        (inpainting) must beat it.
        """
        if self.guide is None:
            return None
        return {"image": self.guide}

    def ema_keys(self) -> tuple[str, ...] | None:
        """With patch steps only the full-frame image is averaged."""
        return ("image",) if self.patch_size is not None else None

    def loss(self, out: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Mean squared error to the image over the fitted pixels (of the step's patch, if any)."""
        if "patch" in out:
            w = self._window
            target = self.image.tensor[..., w[0], w[1]]
            data = weighted_mse(out["patch"], target, self.weight[..., w[0], w[1]])
        else:
            data = weighted_mse(out["image"], self.image.tensor, self.weight)
        return data, {"data": data}

    #: How many standard errors better than the guide on the held-out pixels an output must be
    #: to be preferred to it (a one-sided test at about 98%): where the evidence is weak, the run
    #: returns the classical estimate rather than a change the data do not confirm.
    CONFIDENCE_Z = 2.0

    def _held_out_errors(self, image: torch.Tensor) -> torch.Tensor:
        """Squared error per held-out pixel, summed over channels, as a flat vector."""
        held = self.held_weight
        assert held is not None
        err = ((image.float() - self.image.tensor) ** 2 * held).sum(dim=1)
        return err[held[:, 0] > 0]

    #: Held-out errors (as :meth:`_held_out_errors`) of the classical peer the guide was confirmed
    #: to beat, set by a task whose guide is a confirmed improvement on it (``None``: the guide is
    #: the peer). An output that is significantly better than the *peer* on the held-out pixels
    #: then competes with the guide by its plain held-out error: it need not also be confirmed
    #: better than the improved guide (the 149 held-out pixels of a 128^2 image with 80% missing
    #: cannot tell a 0.8 dB gain over it), only never be worse than the peer where evidence is weak.
    _peer_held_errors: torch.Tensor | None = None

    def validation_loss(self, out: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """Held-out error of the output, as an upper confidence bound when there is a guide.

        Without a guide: the mean squared error on the held-out pixels. With one: the output is
        blended with the guide by weights fitted on the other half of the held-out pixels
        (:meth:`_cross_fitted`, so no pixel judges a weight it helped fit), and scored as the guide's
        held-out error plus the mean paired difference to it plus ``CONFIDENCE_Z`` standard errors
        of that difference, so the guide itself scores its plain error and an output beats it
        only when it is significantly better on pixels neither saw. Where the guide improves on a
        peer (:attr:`_peer_held_errors`), an output significantly better than the peer scores
        its plain held-out error if that is lower.
        """
        if self.held_weight is None:
            return None
        base = self._guide_held_errors
        if base is None:  # no guide: the plain held-out error
            return weighted_mse(self._combined(out, shifted=False), self.image.tensor, self.held_weight)
        combined = self._cross_fitted(out)
        channels = combined.shape[-3]
        diff = self._held_out_errors(combined) - base
        n = diff.numel()
        if n < 2:
            return base.mean() / channels
        spread = diff.std() / n**0.5
        score = (base.mean() + diff.mean() + self.CONFIDENCE_Z * spread) / channels
        peer = self._peer_held_errors
        if peer is not None:
            # confirmed better than the peer: ranked by its own held-out error (see the attribute)
            errors = self._held_out_errors(combined)
            gain = errors - peer
            if gain.mean() + self.CONFIDENCE_Z * gain.std() / n**0.5 < 0:
                score = torch.minimum(score, errors.mean() / channels)
        return score

    def outputs(self, out: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """The returned image in the caller's layout."""
        return {"image": self.image.to_caller(self.final_image(out), self.layout)}

    def result(
        self, outputs: dict[str, np.ndarray], history: dict[str, np.ndarray], params: dict[str, Any]
    ) -> Result:
        """An :class:`ImageResult` of the final image."""
        return ImageResult(history=history, params=params, image=outputs["image"])

    def options(self) -> dict[str, Any]:
        """The recorded settings, the guide used and the input's shape and dtype."""
        return {
            **super().options(),
            "guide_used": self.guide_name,
            "input_shape": list(self.layout.shape),
            "input_dtype": str(self.layout.dtype),
        }
