"""Fitting one DIP generator to one image through a pixel weight: the base of denoising and inpainting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..conversion import ImageLayout, to_unit
from ..network import NetConfig, resolve_net_config
from .base import NoiseInput, PaddedImage, Result, RunContext, Task

__all__ = ["ImageReconstructionTask", "ImageResult", "weighted_mse"]


@dataclass(frozen=True)
class ImageResult(Result):
    """Result of a single-image task.

    Attributes
    ----------
    image
        The restored image, with the input's shape, dtype and value range.
    """

    image: np.ndarray = None  # type: ignore[assignment]


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
    net
        Network preset name, settings dict or :class:`NetConfig`.
    lr
        Adam learning rate.
    reg_noise
        Standard deviation of the per-step input perturbation.
    input_std
        Scale of the fixed uniform noise input.
    """

    monitor_key = "image"

    def __init__(
        self,
        image: np.ndarray,
        *,
        net: str | NetConfig | dict = "default",
        lr: float = 0.01,
        reg_noise: float = 1 / 30,
        input_std: float = 0.1,
    ) -> None:
        self.unit, self.layout = to_unit(image)
        self.net_config = resolve_net_config(net)
        self.net_name = net if isinstance(net, str) else "custom"
        if lr <= 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if reg_noise < 0 or input_std <= 0:
            raise ValueError("reg_noise must be >= 0 and input_std > 0")
        self.lr = float(lr)
        self.reg_noise = float(reg_noise)
        self.input_std = float(input_std)

    def pixel_weight(self) -> np.ndarray | None:
        """``(Y, X)`` weight of each pixel in the loss (``None``: all pixels count)."""
        return None

    def setup(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.image = PaddedImage(self.unit, self.net_config.size_multiple, ctx.device)
        weight = self.pixel_weight()
        self.weight = self.image.valid
        if weight is not None:
            w = torch.from_numpy(self.image.pad(weight.astype(np.float32), mode="constant"))
            self.weight = self.weight * w[None, None].to(ctx.device)
        self.net = self.build_net(self.net_config, self.layout.channels, 1, ctx)
        self.z = NoiseInput(
            ctx, self.net_config.input_depth, self.image.padded_shape, self.input_std, self.reg_noise
        )

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": list(self.net.parameters()), "lr": self.lr}]

    def forward(self) -> dict[str, torch.Tensor]:
        return {"image": self.net(self.z.sample())[:, 0]}

    def loss(self, out: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        data = weighted_mse(out["image"], self.image.tensor, self.weight)
        return data, {"data": data}

    def outputs(self, out: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        return {"image": self.image.to_caller(out["image"], self.layout)}

    def result(
        self, outputs: dict[str, np.ndarray], history: dict[str, np.ndarray], params: dict[str, Any]
    ) -> Result:
        return ImageResult(history=history, params=params, image=outputs["image"])

    def options(self) -> dict[str, Any]:
        return {
            "net": self.net_name,
            "net_config": self.net_config.to_dict(),
            "lr": self.lr,
            "reg_noise": self.reg_noise,
            "input_std": self.input_std,
            "input_shape": list(self.layout.shape),
            "input_dtype": str(self.layout.dtype),
        }

    @property
    def input_layout(self) -> ImageLayout:
        """Layout of the caller's image."""
        return self.layout
