"""DIP inpainting: fit the generator on the known pixels; it fills the missing ones."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..conversion import check_mask, from_unit, to_unit
from .reconstruction import ImageReconstructionTask, weighted_mse

__all__ = ["InpaintTask", "smooth_fill"]


def smooth_fill(
    unit: np.ndarray, missing: np.ndarray, scales: tuple[float, ...] = (1, 2, 4, 8, 16, 32)
) -> np.ndarray:
    """A cheap fill of the missing pixels of a ``(C, Y, X)`` image by normalised convolution.

    Each missing pixel gets the Gaussian-weighted mean of the known pixels around it, at the
    finest scale whose window holds enough known pixels; known pixels keep their values.
    """
    known = torch.from_numpy((~missing).astype(np.float32))[None, None]
    img = torch.from_numpy(np.ascontiguousarray(unit, dtype=np.float32))[None]
    filled = img.clone()
    todo = torch.from_numpy(missing.copy())[None, None]
    for sigma in scales:
        radius = int(3 * sigma)
        x = torch.arange(-radius, radius + 1, dtype=torch.float32)
        g = torch.exp(-0.5 * (x / sigma) ** 2)
        g = g / g.sum()

        def blur(t: torch.Tensor, g: torch.Tensor = g, r: int = radius) -> torch.Tensor:
            c = t.shape[1]
            mode = "reflect" if min(t.shape[-2:]) > r else "replicate"
            t = torch.nn.functional.pad(t, (r, r, r, r), mode=mode)
            t = torch.nn.functional.conv2d(t, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
            return torch.nn.functional.conv2d(t, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)

        den = blur(known)
        num = blur(img * known)
        ok = todo & (den > 0.1)
        filled = torch.where(ok, num / den.clamp_min(1e-6), filled)
        todo = todo & ~ok
        if not bool(todo.any()):
            break
    if bool(todo.any()):
        mean = (img * known).sum(dim=(2, 3), keepdim=True) / known.sum().clamp_min(1)
        filled = torch.where(todo, mean.expand_as(filled), filled)
    return filled[0].numpy()


class InpaintTask(ImageReconstructionTask):
    """Fill the missing pixels of one image with a Deep Image Prior.

    Parameters
    ----------
    image
        The image (values under the mask are ignored).
    mask
        ``(Y, X)`` array, nonzero/True where a pixel is missing.
    keep_known
        Return the input's own values at known pixels (the generator's only where missing).
    guide
        Weight of a guide term at the start: the missing pixels are also pulled towards a cheap
        smooth fill (:func:`smooth_fill`), with a weight that falls linearly from ``guide`` to 0
        over ``guide_steps`` steps. It gets the generator near a plausible fill quickly; after
        that only the known pixels count. 0 switches it off.
    guide_steps
        Steps over which the guide weight falls to 0.
    **options
        See :class:`ImageReconstructionTask` (net, lr, reg_noise, input_std).
    """

    name = "inpaint"
    default_steps = 3000

    def __init__(
        self,
        image: np.ndarray,
        mask: np.ndarray,
        *,
        keep_known: bool = True,
        guide: float = 0.0,
        guide_steps: int = 500,
        **options: Any,
    ) -> None:
        super().__init__(image, **options)
        self.missing = check_mask(mask, self.layout, name="mask")
        n_missing = int(self.missing.sum())
        if n_missing == 0:
            raise ValueError("mask marks no pixel as missing: nothing to inpaint (nonzero = missing)")
        if n_missing == self.missing.size:
            raise ValueError("mask marks every pixel as missing: there is nothing known to fit")
        self.keep_known = bool(keep_known)
        if guide < 0 or guide_steps < 1:
            raise ValueError(f"guide must be >= 0 and guide_steps >= 1, got {guide} and {guide_steps}")
        self.guide = float(guide)
        self.guide_steps = int(guide_steps)
        # the value range comes from the known pixels: what lies under the mask is arbitrary
        self.unit, self.layout = to_unit(image, range_from=~self.missing)

    def pixel_weight(self) -> np.ndarray:
        return (~self.missing).astype(np.float32)

    def setup(self, ctx) -> None:
        super().setup(ctx)
        if self.guide > 0:
            fill = self.image.pad(smooth_fill(self.unit, self.missing))
            self.fill = torch.from_numpy(np.ascontiguousarray(fill))[None].to(ctx.device)
            hole = torch.from_numpy(self.image.pad(self.missing.astype(np.float32), mode="constant"))
            self.hole = hole[None, None].to(ctx.device)

    def loss(self, out: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        data, terms = super().loss(out, step)
        if self.guide <= 0:
            return data, terms
        # the term is always reported (same loss names every step); it weighs 0 after the fade
        weight = max(0.0, self.guide * (1 - step / self.guide_steps))
        with torch.set_grad_enabled(weight > 0):
            guide = weighted_mse(out["image"], self.fill, self.hole)
        return (data + weight * guide if weight > 0 else data), {**terms, "guide": guide.detach()}

    def outputs(self, out: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        if not self.keep_known:
            return super().outputs(out)
        filled = self.image.to_numpy(out["image"])[0]
        filled = np.where(self.missing[None], filled, self.unit)
        return {"image": from_unit(filled, self.layout)}

    def options(self) -> dict[str, Any]:
        return {
            **super().options(),
            "keep_known": self.keep_known,
            "guide": self.guide,
            "guide_steps": self.guide_steps,
            "missing_fraction": float(self.missing.mean()),
        }
