"""Dehazing: a clear-image generator and a transmission generator under ``I = t J + (1 - t) A``."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from ..core.options import GeneratorOptions, option
from . import Aux, Demo, DemoSample, Output, Sample, TaskEntry
from ._common import psnr_score

__all__ = ["ENTRY", "DehazeOptions", "parse_airlight"]


@dataclass(frozen=True, kw_only=True)
class DehazeOptions(GeneratorOptions):
    """Options of :class:`~napari_doubledip.core.tasks.dehaze.DehazeTask`.

    Parameters
    ----------
    net, t_net
        Networks of the image and the transmission generators.
    lr, t_lr
        Adam learning rates of the two generators.
    t_min
        Lowest transmission (> 0; keeps ``J = (I - A) / t + A`` bounded).
    patch
        Dark-channel window (``None``: :func:`default_patch_size`).
    omega
        Haze kept by the guide transmission (He et al.: 0.95).
    guide
        ``"envelope"`` or ``"dcp"``: the transmission the prior term pulls towards.
    output
        ``"inverse"`` or ``"generator"``: where the reported clear image comes from (see above).
    prior_weight, prior_decay, prior_floor
        Weight of the pull towards the guide transmission, its decay time constant (steps)
        and the fraction of the weight that stays.
    smooth_weight
        Weight of the edge-aware total variation of ``t``.
    dark_weight
        Weight of the dark-channel (haze-free) prior on ``J``.
    reg_noise, input_std
        Per-step input perturbation and fixed input noise scale.
    """

    t_net: Any = option("mask", "network of the transmission generator", net=True)
    t_lr: float = option(0.01, "Adam learning rate of the transmission generator")
    t_min: float = option(0.05, "lowest transmission (> 0)")
    patch: int | None = option(None, "dark-channel window (None: about 1/25 of the shorter side)")
    omega: float = option(0.95, "haze kept by the guide transmission (He et al.: 0.95)")
    guide: str = option(
        "envelope", "the transmission the prior term pulls towards", choices=("envelope", "dcp")
    )
    output: str = option("inverse", "where the clear image comes from", choices=("inverse", "generator"))
    prior_weight: float = option(1.0, "weight of the pull towards the guide transmission")
    prior_decay: float = option(200.0, "decay time constant (steps) of that weight")
    prior_floor: float = option(0.05, "fraction of that weight that stays")
    smooth_weight: float = option(0.01, "weight of the edge-aware total variation of t")
    dark_weight: float = option(0.0, "weight of the dark-channel prior on the clear image")

    def check(self) -> None:
        """Check the dehazing options' ranges."""
        if self.lr <= 0 or self.t_lr <= 0:
            raise ValueError(f"lr and t_lr must be > 0, got {self.lr} and {self.t_lr}")
        super().check()
        if not 0 < self.t_min < 1:
            raise ValueError(f"t_min must be in (0, 1), got {self.t_min}")
        if not 0 < self.omega <= 1:
            raise ValueError(f"omega must be in (0, 1], got {self.omega}")
        if (
            min(self.prior_weight, self.prior_floor, self.smooth_weight, self.dark_weight) < 0
            or self.prior_decay <= 0
        ):
            raise ValueError(
                "prior_weight, prior_floor, smooth_weight and dark_weight must be >= 0 and prior_decay > 0"
            )
        patch = self.patch
        if patch is not None and (int(patch) != patch or patch < 1 or patch % 2 == 0):
            raise ValueError(f"patch must be an odd positive integer, got {patch}")
        if self.guide not in ("envelope", "dcp"):
            raise ValueError(f"guide must be 'envelope' or 'dcp', got {self.guide!r}")
        if self.output not in ("inverse", "generator"):
            raise ValueError(f"output must be 'inverse' or 'generator', got {self.output!r}")


def parse_airlight(text: str) -> list[float] | None:
    """``--airlight``: ``auto`` (``None``), one value, or one per channel (``0.9,0.9,0.95``)."""
    if text.strip().lower() in ("auto", ""):
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--airlight takes 'auto', one value or one per channel (e.g. 0.9,0.9,0.95), got {text!r}"
        ) from None


def _layers(size: int) -> list:
    from .. import samples

    hazy, _clean, _transmission, _airlight = samples.hazy_photo(size)
    return [(hazy, {"name": "hazy rocket"}, "image")]


def _demo(size: int) -> DemoSample:
    from .. import samples

    hazy, clean, transmission, _airlight = samples.hazy_photo(size=size)
    return DemoSample(
        inputs={"input": hazy}, truth={"clean": clean, "true_transmission": transmission}, args=(hazy,)
    )


def _score(sample: DemoSample, result: Any) -> tuple[dict[str, Any], dict[str, float], list[str]]:
    return psnr_score(sample, result, transmission=result.transmission)


ENTRY = TaskEntry(
    name="dehaze",
    title="Dehaze",
    api="dehaze",
    task="napari_doubledip.core.tasks.dehaze:DehazeTask",
    steps=1500,  # the engine class's default_steps (a test checks)
    options=DehazeOptions,
    help="remove haze from each image",
    description="Remove haze: split the image into a haze-free image and a transmission map "
    "(the haze colour is estimated from the image).",
    outputs=(
        Output("image", "dehazed"),
        Output(
            "transmission",
            "transmission",
            kind="mask",
            colormap="viridis",
            visible=False,
            file="_transmission",
            tiff=True,
        ),
    ),
    aux=Aux(
        "airlight",
        "value",
        cli_help="haze colour in the image's range: auto (default), one value, or one per channel",
        parse=parse_airlight,
        annotation="float | list[float] | np.ndarray | None",
    ),
    sample=Sample("hazy_photo", "Hazy photo (Dehaze)", _layers),
    demo=Demo(_demo, _score, tiff=("transmission", "true_transmission")),
    summary="Remove haze: ``I = t * J + (1 - t) * A`` with the transmission ``t`` and the clear image ``J``.",
    doc="""image
    2-D gray or ``(Y, X, C)`` hazy image of any dtype and range.
airlight
    The haze colour ``A`` (a scalar or one value per channel, in the image's range); estimated
    from the dark channel when ``None``.""",
    order=5,
    result="DehazeResult",
)
