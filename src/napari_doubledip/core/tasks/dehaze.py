"""Dehazing with Double-DIP: a clear-image generator and a transmission generator.

Model (Koschmieder): ``I = t * J + (1 - t) * A`` with the hazy image ``I``, the clear image ``J``,
the transmission ``t`` (one value per pixel, in ``[t_min, 1]``) and the airlight ``A`` (the haze
colour, one value per channel). ``J`` comes from an image generator, ``t`` from a small, smooth
mask-type generator; ``A`` is given or estimated from the dark channel (He et al. 2009).

The dark-channel helpers are in :mod:`~napari_doubledip.core.priors.haze`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ...registry.dehaze import DehazeOptions
from ..conversion import check_image, to_unit_jointly
from ..formation import blend, solve_first
from ..losses import contrast_weights, edge_aware_smoothness
from ..network import resolve_net_config
from ..priors.haze import (
    dcp_transmission,
    default_patch_size,
    envelope_transmission,
    estimate_airlight,
    soft_dark_channel,
)
from .base import NoiseInput, PaddedImage, Result, RunContext, Task
from .reconstruction import weighted_mse

#: The transmission net starts at the guide's mean, kept this far inside (0, 1).
START_MARGIN = 0.05

__all__ = ["DehazeResult", "DehazeTask"]


@dataclass(frozen=True)
class DehazeResult(Result):
    """Result of :class:`DehazeTask`.

    Attributes
    ----------
    image
        The haze-free image ``J``, with the input's shape, dtype and value range.
    transmission
        float32 ``(Y, X)`` in ``(0, 1]``: the fraction of the scene's light that reaches the camera.
    airlight
        float64 ``(C,)``: the haze colour per channel, in the image's value range.
    """

    image: np.ndarray = None  # type: ignore[assignment]
    transmission: np.ndarray = None  # type: ignore[assignment]
    airlight: np.ndarray = None  # type: ignore[assignment]

    def record(self) -> dict[str, Any]:
        """The airlight, for the CLI's sidecar."""
        return {"airlight": self.airlight}

    def summary(self) -> str:
        """The airlight, for the widget's status line."""
        return " Airlight: " + ", ".join(f"{a:.3g}" for a in np.ravel(self.airlight)) + "."


class DehazeTask(Task[DehazeOptions]):
    """Remove haze from one image with Double-DIP.

    Two generators: the clear image ``J`` (``net``) and the transmission ``t`` (``t_net``, a small
    smooth net; ``t = t_min + (1 - t_min) * sigmoid``). The airlight ``A`` is fixed: given, or
    estimated from the dark channel. The loss is::

        |t J + (1 - t) A - I|^2                          reconstruction
        + w_prior(step) |t - t_guide|^2                   guide towards a prior transmission
        + smooth_weight * edge-aware TV(t)                transmission changes at image edges
        + dark_weight * mean(dark channel of J)           the clear image is not hazy (off by default)

    ``t_guide`` is :func:`envelope_transmission` (``guide="envelope"``, the smallest smooth
    transmission that keeps the clear image non-negative) or the dark-channel-prior transmission
    refined by a guided filter (``guide="dcp"``). Its weight starts at ``prior_weight`` and decays
    to ``prior_weight * prior_floor`` with a time constant of ``prior_decay`` steps, so the
    generators correct it where the data disagree: with ``J`` bounded to [0, 1] by its sigmoid, the
    reconstruction pushes ``t`` up wherever the guide would need a clear value outside [0, 1].

    The reported clear image (``output="inverse"``, default) inverts the model with the learnt
    transmission, ``J = (I - (1 - t) A) / t``: at a CPU budget of a few hundred steps the image
    generator is still far blurrier than that (measured on astronaut at 128 px after 600 steps:
    22.4 dB for the generator, 28.6 dB for the inversion). ``output="generator"`` reports the
    generator's ``J`` (smoother; better for noisy inputs, which the inversion amplifies by ``1/t``).

    Parameters
    ----------
    image
        The hazy image: 2-D gray or ``(Y, X, C)`` (RGBA: the alpha channel is passed through).
        Its value range is the dtype's for uint8/uint16 images, [0, 1] for floats inside [0, 1],
        else the image's own min..max; the dehazed image is returned in that range.
    airlight
        The haze colour: a scalar or one value per channel (alpha excluded), in the image's value
        range; ``None`` estimates it (:func:`estimate_airlight`).
    options, **kwargs
        :class:`~napari_doubledip.registry.dehaze.DehazeOptions`, as an object and/or keywords (its
        docstring explains each option, and the measurements behind the defaults).
    """

    name = "dehaze"
    default_steps = 1500
    monitor_key = None

    def __init__(
        self,
        image: np.ndarray,
        airlight: float | list[float] | np.ndarray | None = None,
        *,
        options: DehazeOptions | None = None,
        **kwargs: Any,
    ) -> None:
        self.opts = o = DehazeOptions.build(options, **kwargs)
        # checked first, so that a message names it as the check before a run does ("image")
        (self.unit,), (self.layout,) = to_unit_jointly([check_image(image)], name="image")
        self.channels = self.layout.channels
        self.patch = int(o.patch) if o.patch is not None else default_patch_size(self.layout.spatial_shape)
        self.t_min = o.t_min
        self.net_config = resolve_net_config(o.net)
        self.t_config = resolve_net_config(o.t_net)
        scale = self.layout.high - self.layout.low
        self._airlight: np.ndarray | None = None
        self._t_prior: np.ndarray | None = None
        if airlight is None:
            self.airlight_source = "estimated"  # in prepare(), on the worker
        else:
            self._airlight = self._check_airlight(airlight, scale)
            self.airlight_source = "given"

    def prepare(self) -> None:
        """The airlight (unless given) and the guide transmission.

        Many filter passes: :meth:`setup` runs this on the worker thread, rather than
        ``__init__`` on the caller's (the GUI thread in napari).
        """
        if self._t_prior is not None:
            return
        o = self.opts
        if self._airlight is None:
            self._airlight = estimate_airlight(self.unit, self.patch)
        if o.guide == "dcp":
            t_guide = dcp_transmission(self.unit, self._airlight, self.patch, o.omega)
        else:
            t_guide = envelope_transmission(self.unit, self._airlight, o.omega)
        self._t_prior = np.clip(t_guide, self.t_min, 1.0).astype(np.float32)

    @property
    def airlight_unit(self) -> np.ndarray:
        """The airlight ``(C,)`` in unit range (estimated on first use unless given)."""
        self.prepare()
        assert self._airlight is not None  # set by prepare()
        return self._airlight

    @property
    def t_prior(self) -> np.ndarray:
        """The guide transmission ``(Y, X)`` (computed on first use)."""
        self.prepare()
        assert self._t_prior is not None  # set by prepare()
        return self._t_prior

    def _check_airlight(self, airlight: Any, scale: float) -> np.ndarray:
        """Validate a caller's airlight (scalar or per channel, image range); return it in unit range."""
        low, high = self.layout.low, self.layout.high
        try:
            a = np.asarray(airlight, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise ValueError(
                f"airlight must be a number or {self.channels} numbers, got {airlight!r}"
            ) from None
        if a.size == 1:
            a = np.repeat(a, self.channels)
        if a.size != self.channels:
            raise ValueError(
                f"airlight has {a.size} values but the image has {self.channels} channel(s) (alpha "
                f"excluded); give one value or {self.channels}"
            )
        if not np.all(np.isfinite(a)):
            raise ValueError(f"airlight contains NaN or infinite values: {a.tolist()}")
        if np.any(a < low) or np.any(a > high):
            raise ValueError(
                f"airlight {a.tolist()} is outside the image's value range [{low:g}, {high:g}]; give it "
                "in the image's units (e.g. 0-255 for uint8)"
            )
        unit = (a - low) / scale if scale > 0 else np.ones_like(a)
        if np.any(unit <= 0):
            raise ValueError(f"airlight {a.tolist()} must be brighter than the image's darkest value {low:g}")
        return unit

    # --- engine hooks --------------------------------------------------------------------------
    def setup(self, ctx: RunContext) -> None:
        """Prepare the airlight and guide transmission, then build the two generators and their inputs."""
        self.ctx = ctx
        self.prepare()
        o = self.opts
        multiple = max(self.net_config.size_multiple, self.t_config.size_multiple)
        self.image = PaddedImage(self.unit, multiple, ctx.device)
        self.valid = self.image.valid
        shape = self.image.padded_shape
        self.airlight = torch.as_tensor(self.airlight_unit, dtype=torch.float32, device=ctx.device).view(
            1, -1, 1, 1
        )
        t_guide = self.image.pad(self.t_prior[None].astype(np.float32))
        self.t_guide = torch.from_numpy(np.ascontiguousarray(t_guide))[None].to(ctx.device)
        self.edge_x, self.edge_y = contrast_weights(self.image.tensor)
        self.j_net = self.build_net(self.net_config, self.channels, 1, ctx, salt=1)
        self.t_net = self.build_net(self.t_config, 1, 1, ctx, salt=2)
        # start near the guide's mean transmission (kept inside (0, 1): a finite logit)
        start = (self.t_prior.mean() - self.t_min) / (1 - self.t_min)
        self.t_net.init_output(float(np.clip(start, START_MARGIN, 1 - START_MARGIN)))
        self.zj = NoiseInput(ctx, self.net_config.input_depth, shape, o.input_std, o.reg_noise)
        self.zt = NoiseInput(ctx, self.t_config.input_depth, shape, o.input_std, o.reg_noise)

    def param_groups(self) -> list[dict[str, Any]]:
        """The image generator at ``lr``, the transmission generator at ``t_lr``."""
        return [
            {"params": list(self.j_net.parameters()), "lr": self.opts.lr},
            {"params": list(self.t_net.parameters()), "lr": self.opts.t_lr},
        ]

    def forward(self) -> dict[str, torch.Tensor]:
        """The clear image and the transmission (kept in ``[t_min, 1]``)."""
        clear = self.j_net(self.zj.sample())[:, 0]  # (1, C, Yp, Xp)
        t = self.t_net(self.zt.sample())[:, 0]  # (1, 1, Yp, Xp)
        t = self.t_min + (1 - self.t_min) * t
        return {"image": clear, "transmission": t}

    def prior_weight_at(self, step: int) -> float:
        """Weight of the pull towards the guide transmission at ``step``."""
        o = self.opts
        fading = float(np.exp(-step / o.prior_decay))
        return o.prior_weight * (o.prior_floor + (1 - o.prior_floor) * fading)

    def loss(self, out: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Reconstruction through the haze model, pull towards the guide, edge-aware smoothness (and dark channel)."""
        clear, t = out["image"].float(), out["transmission"].float()
        data = weighted_mse(blend(t, clear, self.airlight), self.image.tensor, self.valid)
        prior = weighted_mse(t, self.t_guide, self.valid)
        smooth = edge_aware_smoothness(t, self.edge_x, self.edge_y)
        terms = {"data": data, "t_prior": prior, "t_smooth": smooth}
        total = data + self.prior_weight_at(step) * prior + self.opts.smooth_weight * smooth
        if self.opts.dark_weight > 0:
            dark = (soft_dark_channel(clear, self.patch) * self.valid).sum() / self.valid.sum().clamp_min(1.0)
            terms["dark"] = dark
            total = total + self.opts.dark_weight * dark
        return total, terms

    def clear_image(self, out: dict[str, torch.Tensor]) -> torch.Tensor:
        """The haze-free image ``(1, C, Yp, Xp)`` to report, per the ``output`` option."""
        if self.opts.output == "generator":
            return out["image"].float()
        t = out["transmission"].float().clamp_min(self.t_min)
        return solve_first(self.image.tensor, t, self.airlight).clamp(0.0, 1.0)

    def outputs(self, out: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """The clear image in the caller's layout and the transmission."""
        t = self.image.to_numpy(out["transmission"])[0, 0]
        return {
            "image": self.image.to_caller(self.clear_image(out), self.layout),
            "transmission": np.clip(t, self.t_min, 1.0).astype(np.float32),
        }

    def airlight_in_image_units(self) -> np.ndarray:
        """The airlight ``(C,)`` in the image's value range."""
        return self.airlight_unit * (self.layout.high - self.layout.low) + self.layout.low

    def result(
        self, outputs: dict[str, np.ndarray], history: dict[str, np.ndarray], params: dict[str, Any]
    ) -> DehazeResult:
        """The :class:`DehazeResult`, with the airlight in the image's units."""
        return DehazeResult(
            history=history,
            params=params,
            image=outputs["image"],
            transmission=np.array(outputs["transmission"], dtype=np.float32),
            airlight=self.airlight_in_image_units(),
        )

    def options(self) -> dict[str, Any]:
        """The recorded options, with the patch size, the airlight and where it came from."""
        return {
            **super().options(),
            "patch": self.patch,
            "airlight": self.airlight_in_image_units().tolist(),
            "airlight_source": self.airlight_source,
            "value_range": [self.layout.low, self.layout.high],
            "model": "I = t * J + (1 - t) * A",
            "input_shape": list(self.layout.shape),
            "input_dtype": str(self.layout.dtype),
        }
