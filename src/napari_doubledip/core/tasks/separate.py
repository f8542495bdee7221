"""Transparency separation (Double-DIP): two layer generators, one scalar mixing weight per input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ...registry.separate import SeparateOptions
from ..conversion import check_image, to_unit_jointly
from ..formation import blend
from ..losses import ExclusionLoss
from ..network import resolve_net_config
from .base import NoiseInput, PaddedImage, Result, RunContext, Task
from .reconstruction import weighted_mse

__all__ = ["SeparateTask", "SeparationResult"]

#: Default starting mixing weights run from the first to the second value over the N inputs.
INITIAL_ALPHA_SPREAD = (0.6, 0.4)


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

    def record(self) -> dict[str, Any]:
        """The mixing weights, for the CLI's sidecar."""
        return {"alphas": self.alphas}

    def summary(self) -> str:
        """The mixing weights, for the widget's status line."""
        return " Mixing weights: " + ", ".join(f"{a:.2f}" for a in np.ravel(self.alphas)) + "."


class SeparateTask(Task[SeparateOptions]):
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
    options, **kwargs
        :class:`~napari_doubledip.registry.separate.SeparateOptions`, as an object and/or
        keywords: ``net``, ``lr``, ``alpha_lr`` (the mixing-weight logits' learning rate),
        ``exclusion_weight``, ``exclusion_scales``, ``reg_noise``, ``input_std``, and:
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
        options: SeparateOptions | None = None,
        **kwargs: Any,
    ) -> None:
        self.opts = o = SeparateOptions.build(options, **kwargs)
        images = self._mixtures(images)
        self.initial_alphas = self._initial_alphas(o, len(images))
        self.units, layouts = to_unit_jointly(images)
        self.layout = layouts[0]
        self.n = len(images)
        self.net_config = resolve_net_config(o.net)
        self.learn_alpha = self.n >= 2 or bool(o.learn_single_alpha)

    @staticmethod
    def _mixtures(images: np.ndarray | list[np.ndarray]) -> list[np.ndarray]:
        """The mixtures as a list; raises for none, and for mixtures of different shapes."""
        images = [images] if isinstance(images, np.ndarray) else list(images)
        if not images:
            raise ValueError("separate needs one image or a list of N >= 2 mixtures; got an empty list")
        shapes = [np.shape(img) for img in images]
        if len(set(shapes)) > 1:
            raise ValueError(
                f"all mixtures must have the same shape (they show the same two layers), got {shapes}; "
                "crop or resize them to one shape first"
            )
        return images

    @staticmethod
    def _initial_alphas(o: SeparateOptions, n: int) -> np.ndarray:
        """The mixing weights the run starts from (given, or spread so that the layers start apart)."""
        if o.initial_alphas is None:
            # the first layer starts with more weight in the first mixtures: the layers start apart
            return np.linspace(*INITIAL_ALPHA_SPREAD, n) if n >= 2 else np.array([0.5])
        init = np.asarray(o.initial_alphas, dtype=np.float64).ravel()
        if init.shape != (n,) or not np.all((init > 0) & (init < 1)):
            raise ValueError(f"initial_alphas must be {n} values in (0, 1), got {o.initial_alphas!r}")
        return init

    @classmethod
    def check_inputs(cls, images: Any, *others: Any, options: Any) -> None:
        """The mixtures (one shape, each an image) and the starting weights, without converting anything."""
        images = cls._mixtures(images)
        cls._initial_alphas(options, len(images))
        for i, image in enumerate(images):
            check_image(image, name=f"images[{i}]")

    def setup(self, ctx: RunContext) -> None:
        """Build the two layer generators, their input and the mixing-weight logits."""
        self.ctx = ctx
        multiple = self.net_config.size_multiple
        self.padded = [PaddedImage(u, multiple, ctx.device) for u in self.units]
        self.target = torch.cat([p.tensor for p in self.padded], dim=0)  # (N, C, Yp, Xp)
        self.valid = self.padded[0].valid
        self.nets = self.build_net(self.net_config, self.layout.channels, 2, ctx, salt=1)
        self.z = NoiseInput(
            ctx,
            2 * self.net_config.input_depth,
            self.padded[0].padded_shape,
            self.opts.input_std,
            self.opts.reg_noise,
        )
        logits = torch.logit(torch.as_tensor(self.initial_alphas, dtype=torch.float32))
        self.alpha_logits = torch.nn.Parameter(logits.to(ctx.device), requires_grad=self.learn_alpha)
        self.exclusion = ExclusionLoss(self.opts.exclusion_scales)

    def generators(self) -> list[tuple[Any, int]]:
        """The nets :meth:`setup` builds, for the memory estimate: ``(config, count)``."""
        return [(self.net_config, 2)]

    def param_groups(self) -> list[dict[str, Any]]:
        """The generators at ``lr``, the mixing weights (when learned) at ``alpha_lr``."""
        groups = [{"params": list(self.nets.parameters()), "lr": self.opts.lr}]
        if self.learn_alpha:
            groups.append({"params": [self.alpha_logits], "lr": self.opts.alpha_lr})
        return groups

    def forward(self) -> dict[str, torch.Tensor]:
        """The two layers and the mixing weights."""
        layers = self.nets(self.z.sample())  # (1, 2, C, Yp, Xp)
        return {"layers": layers, "alphas": torch.sigmoid(self.alpha_logits)}

    def loss(self, out: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Reconstruction of every input as a blend of the layers, and their exclusion."""
        a, b = out["layers"][0, 0].float(), out["layers"][0, 1].float()
        alphas = out["alphas"].float().view(-1, 1, 1, 1)
        mix = blend(alphas, a[None], b[None])  # (N, C, Yp, Xp)
        data = weighted_mse(mix, self.target, self.valid.expand(self.n, -1, -1, -1))
        excl = self.exclusion(a[None], b[None])
        total = data + self.opts.exclusion_weight * excl
        return total, {"data": data, "exclusion": excl}

    def outputs(self, out: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """The two layers in the first input's layout and the mixing weights."""
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
        """The :class:`SeparationResult`."""
        alphas = np.array(outputs["alphas"], dtype=np.float64)
        params = {**params, "alphas": alphas.tolist()}
        return SeparationResult(
            history=history, params=params, layers=(outputs["layer_a"], outputs["layer_b"]), alphas=alphas
        )

    def options(self) -> dict[str, Any]:
        """The recorded options, with the inputs' count and the starting weights."""
        return {
            **super().options(),
            "n_inputs": self.n,
            "initial_alphas": self.initial_alphas.tolist(),
            "alphas_learned": self.learn_alpha,
            "model": "convex: I_n = alpha_n * a + (1 - alpha_n) * b",
            "input_shape": list(self.layout.shape),
            "input_dtype": str(self.layout.dtype),
        }
