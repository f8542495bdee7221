"""Transparency separation (Double-DIP): two layer generators, one scalar mixing weight per input."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from ..conversion import ImageLayout, to_unit
from ..losses import ExclusionLoss
from ..network import NetConfig, resolve_net_config
from .base import NoiseInput, PaddedImage, Result, RunContext, Task

__all__ = ["SeparateTask", "SeparationResult", "to_unit_jointly"]


def to_unit_jointly(
    images: list[np.ndarray], name: str = "images"
) -> tuple[list[np.ndarray], list[ImageLayout]]:
    """Convert several images to unit range with ONE shared value range.

    Mixing models (``I = a * x + b * y``) only hold when every image is scaled the same way,
    so the range is the union of the images' ranges (for integer dtypes: the dtype's range
    when all values fit, e.g. 0..255 for uint8, and 0..1 for floats within [0, 1], so that
    white stays white).

    Returns
    -------
    units, layouts
        ``(C, Y, X)`` float32 arrays and layouts that map back to each caller's dtype.

    Raises
    ------
    ValueError
        For non-images and for images with different channel counts.
    """
    converted = [to_unit(img, name=f"{name}[{i}]") for i, img in enumerate(images)]
    channels = {layout.channels for _, layout in converted}
    if len(channels) > 1:
        shapes = [layout.shape for _, layout in converted]
        raise ValueError(f"{name} must all have the same number of channels, got shapes {shapes}")
    low = min(layout.low for _, layout in converted)
    high = max(layout.high for _, layout in converted)
    dtypes = {layout.dtype for _, layout in converted}
    if len(dtypes) == 1:
        dtype = next(iter(dtypes))
        if dtype == np.uint8 or dtype == np.uint16:
            info = np.iinfo(dtype)
            low, high = float(info.min), float(info.max)
        elif np.issubdtype(dtype, np.floating) and low >= 0.0 and high <= 1.0:
            low, high = 0.0, 1.0
    scale = high - low if high > low else 1.0
    units, layouts = [], []
    for unit, layout in converted:
        own = layout.high - layout.low if layout.high > layout.low else 1.0
        rescaled = ((unit.astype(np.float64) * own + layout.low - low) / scale).astype(np.float32)
        units.append(rescaled)
        layouts.append(replace(layout, low=low, high=low + scale))
    return units, layouts


@dataclass(frozen=True)
class SeparationResult(Result):
    """Result of :class:`SeparateTask`.

    Attributes
    ----------
    layers
        ``(layer_a, layer_b)`` in the first input's layout (shape, dtype, value range).
    alphas
        ``(N,)`` float: the weight of ``layer_a`` in each input (``1 - alpha`` is ``layer_b``'s).
    """

    layers: tuple[np.ndarray, np.ndarray] = None  # type: ignore[assignment]
    alphas: np.ndarray = None  # type: ignore[assignment]


class SeparateTask(Task):
    """Separate images into two transparent layers with Double-DIP.

    Model: each input ``I_n ≈ alpha_n * a + (1 - alpha_n) * b`` with two layer generators ``a``
    and ``b`` (one grouped forward pass) and one scalar ``alpha_n = sigmoid(logit_n)`` per input,
    plus the exclusion loss between ``a`` and ``b``. The convex form is used (not free weights)
    because the layers are sigmoid outputs in [0, 1] like the inputs: free weights add a
    scale ambiguity per layer that the data cannot settle.

    With one image the mixing weight is a constant 0.5 (Double-DIP's constant mask: the image is
    the average of its two layers) unless ``learn_single_alpha`` is set.

    Noise in the mixtures stays out of the layers because a layer must explain all N inputs at
    once (noise is independent per input), the DIP prior fits noise last, and the outputs are
    moving averages with the windowed-variance early stop.

    Parameters
    ----------
    images
        One image, or a list of N >= 2 images of the same shape (mixtures of the same layers).
    net
        Layer generators' network (preset name, dict or NetConfig).
    lr, alpha_lr
        Adam learning rates of the generators and of the mixing-weight logits.
    exclusion_weight
        Weight of the exclusion loss.
    exclusion_scales
        Scales of the exclusion loss.
    reg_noise, input_std
        Per-step input perturbation and fixed input noise scale.
    initial_alphas
        Starting mixing weights (N values in (0, 1)); default spreads them from 0.6 to 0.4 so
        that the two layers start apart.
    learn_single_alpha
        With one image, learn its weight too (otherwise fixed at 0.5).
    """

    name = "separate"
    default_steps = 2000
    monitor_key = "layers"

    def __init__(
        self,
        images: np.ndarray | list[np.ndarray],
        *,
        net: str | NetConfig | dict = "default",
        lr: float = 0.01,
        alpha_lr: float = 0.01,
        exclusion_weight: float = 0.1,
        exclusion_scales: int = 3,
        reg_noise: float = 1 / 30,
        input_std: float = 0.1,
        initial_alphas: list[float] | np.ndarray | None = None,
        learn_single_alpha: bool = False,
    ) -> None:
        if isinstance(images, np.ndarray):
            images = [images]
        else:
            images = list(images)
        if not images:
            raise ValueError("separate needs one image or a list of N >= 2 mixtures; got an empty list")
        shapes = [np.shape(img) for img in images]
        if len(set(shapes)) > 1:
            raise ValueError(
                f"all mixtures must have the same shape (they show the same two layers), got {shapes}; "
                "crop or resize them to one shape first"
            )
        self.units, layouts = to_unit_jointly(images)
        self.layout = layouts[0]
        self.n = len(images)
        if lr <= 0 or alpha_lr <= 0:
            raise ValueError("lr and alpha_lr must be > 0")
        if exclusion_weight < 0:
            raise ValueError(f"exclusion_weight must be >= 0, got {exclusion_weight}")
        if reg_noise < 0 or input_std <= 0:
            raise ValueError("reg_noise must be >= 0 and input_std > 0")
        self.net_config = resolve_net_config(net)
        self.net_name = net if isinstance(net, str) else "custom"
        self.lr, self.alpha_lr = float(lr), float(alpha_lr)
        self.exclusion_weight = float(exclusion_weight)
        self.exclusion_scales = int(exclusion_scales)
        self.reg_noise, self.input_std = float(reg_noise), float(input_std)
        self.learn_alpha = self.n >= 2 or bool(learn_single_alpha)
        if initial_alphas is None:
            init = np.linspace(0.6, 0.4, self.n) if self.n >= 2 else np.array([0.5])
        else:
            init = np.asarray(initial_alphas, dtype=np.float64).ravel()
            if init.shape != (self.n,) or not np.all((init > 0) & (init < 1)):
                raise ValueError(f"initial_alphas must be {self.n} values in (0, 1), got {initial_alphas!r}")
        self.initial_alphas = init

    def setup(self, ctx: RunContext) -> None:
        self.ctx = ctx
        multiple = self.net_config.size_multiple
        self.padded = [PaddedImage(u, multiple, ctx.device) for u in self.units]
        self.target = torch.cat([p.tensor for p in self.padded], dim=0)  # (N, C, Yp, Xp)
        self.valid = self.padded[0].valid
        self.nets = self.build_net(self.net_config, self.layout.channels, 2, ctx, salt=1)
        self.z = NoiseInput(
            ctx, 2 * self.net_config.input_depth, self.padded[0].padded_shape, self.input_std, self.reg_noise
        )
        logits = torch.logit(torch.as_tensor(self.initial_alphas, dtype=torch.float32))
        self.alpha_logits = torch.nn.Parameter(logits.to(ctx.device), requires_grad=self.learn_alpha)
        self.exclusion = ExclusionLoss(self.exclusion_scales)

    def param_groups(self) -> list[dict[str, Any]]:
        groups = [{"params": list(self.nets.parameters()), "lr": self.lr}]
        if self.learn_alpha:
            groups.append({"params": [self.alpha_logits], "lr": self.alpha_lr})
        return groups

    def forward(self) -> dict[str, torch.Tensor]:
        layers = self.nets(self.z.sample())  # (1, 2, C, Yp, Xp)
        return {"layers": layers, "alphas": torch.sigmoid(self.alpha_logits)}

    def loss(self, out: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        a, b = out["layers"][0, 0].float(), out["layers"][0, 1].float()
        alphas = out["alphas"].float().view(-1, 1, 1, 1)
        mix = alphas * a[None] + (1 - alphas) * b[None]  # (N, C, Yp, Xp)
        err = (mix - self.target) ** 2 * self.valid
        data = err.sum() / (self.valid.sum() * self.n * a.shape[0])
        excl = self.exclusion(a[None], b[None])
        total = data + self.exclusion_weight * excl
        return total, {"data": data, "exclusion": excl}

    def outputs(self, out: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        padded = self.padded[0]
        layers = out["layers"][0]
        return {
            "layer_a": padded.to_caller(layers[0], self.layout),
            "layer_b": padded.to_caller(layers[1], self.layout),
            "alphas": out["alphas"].detach().float().cpu().numpy().astype(np.float64),
        }

    def result(
        self, outputs: dict[str, np.ndarray], history: dict[str, np.ndarray], params: dict[str, Any]
    ) -> SeparationResult:
        alphas = np.array(outputs["alphas"], dtype=np.float64)
        params = {**params, "alphas": alphas.tolist()}
        return SeparationResult(
            history=history, params=params, layers=(outputs["layer_a"], outputs["layer_b"]), alphas=alphas
        )

    def options(self) -> dict[str, Any]:
        return {
            "net": self.net_name,
            "net_config": self.net_config.to_dict(),
            "n_inputs": self.n,
            "lr": self.lr,
            "alpha_lr": self.alpha_lr,
            "exclusion_weight": self.exclusion_weight,
            "exclusion_scales": self.exclusion_scales,
            "reg_noise": self.reg_noise,
            "input_std": self.input_std,
            "initial_alphas": self.initial_alphas.tolist(),
            "alphas_learned": self.learn_alpha,
            "model": "convex: I_n = alpha_n * a + (1 - alpha_n) * b",
            "input_shape": list(self.layout.shape),
            "input_dtype": str(self.layout.dtype),
        }
