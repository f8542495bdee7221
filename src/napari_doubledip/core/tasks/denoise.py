"""DIP denoising: fit the generator to the noisy image and stop before it fits the noise."""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import torch

from ...registry.denoise import DenoiseOptions
from ..clipping import clipped_ends, declip, estimate_noise_sigma_unclipped
from ..guides import (
    estimate_noise_sigma,
    fill_from_neighbours,
    nlm_guide,
    sure_blend,
)
from .base import RunContext
from .reconstruction import ImageReconstructionTask

__all__ = ["DenoiseTask", "estimate_noise_sigma"]


class DenoiseTask(ImageReconstructionTask):
    """Denoise one image with a Deep Image Prior.

    Parameters
    ----------
    image
        The noisy image.
    options, **kwargs
        :class:`~napari_doubledip.registry.denoise.DenoiseOptions`: those of
        :class:`ImageReconstructionTask` and ``noise_sigma``, the noise standard deviation in
        the image's own units (``None`` estimates it). With early stopping on, the run stops
        once the generator's mean squared error to the noisy image falls to the noise variance
        (the discrepancy principle): past that point it fits noise.
    """

    name = "denoise"
    default_steps = 3000
    guides = ("sure", "nlm")
    options_class = DenoiseOptions

    def __init__(self, image: np.ndarray, *, options: DenoiseOptions | None = None, **kwargs: Any) -> None:
        super().__init__(image, options=options, **kwargs)
        scale = self.layout.high - self.layout.low
        noise_sigma = self.opts.noise_sigma
        # a given level is converted here; an estimate waits for its first use, on the worker
        # thread (the first call imports scikit-image's wavelets: 0.4 s the viewer froze for)
        self.sigma: float | None = (
            None if noise_sigma is None else (float(noise_sigma) / scale if scale > 0 else 0.0)
        )
        self.sigma_source = "estimated" if noise_sigma is None else "given"
        self._recent: deque[float] = deque(maxlen=10)
        self.blend_weights: np.ndarray | None = None

    @property
    def noise_sigma_unit(self) -> float:
        """The noise level in unit range (estimated on the first call when not given)."""
        if self.sigma is None:
            self.sigma = estimate_noise_sigma_unclipped(self.unit)
        return self.sigma

    def compute_guide(self, unit: np.ndarray, unseen: np.ndarray) -> np.ndarray:
        """The classical estimate of ``unit``, its ``unseen`` pixels first refilled from their neighbours.

        ``"sure"``: the SURE-weighted blend of non-local means at several strengths and patch
        sizes and wavelet shrinkage (:func:`~napari_doubledip.core.guides.sure_blend`), its
        weights fitted on the first call (the image without its held-out pixels) and reused
        for the returned image; ``"nlm"``: scikit-image's non-local means. Where Stop or the
        time budget cuts the blend short, its non-local-means member alone.
        """
        sigma = self.noise_sigma_unit
        filled = fill_from_neighbours(unit, unseen, noise_sigma=sigma, seed=self.ctx.seed)
        if self.guide_name == "nlm":
            return nlm_guide(filled, sigma)
        guide, self.blend_weights = sure_blend(
            filled, sigma, self.ctx.seed, self.blend_weights, budget=self.ctx.budget
        )
        return guide

    def setup(self, ctx: RunContext) -> None:
        """The reconstruction's set-up, and the inverse of the clipping bias where the image saturates."""
        super().setup(ctx)
        self.clipped = clipped_ends(self.unit) if self.opts.declip else (False, False)
        sigma = self.noise_sigma_unit
        if any(self.clipped) and sigma > 0:
            if self.guide is not None:
                # near a clipped end the held-out test (on clipped values) under-weights errors that
                # the declipping then magnifies (0.3 dB lost on a 128^2 photo): the generator may
                # change the guide only where it is over two sigma from a clipped end
                low, high = self.clipped
                trusted = torch.ones_like(self.guide[:, :1])
                if low:
                    trusted = trusted * (self.guide.amin(dim=1, keepdim=True) > 2 * sigma)
                if high:
                    trusted = trusted * (self.guide.amax(dim=1, keepdim=True) < 1 - 2 * sigma)
                self.departure_weight = trusted.float()

    def final_image(self, out: dict[str, torch.Tensor]) -> torch.Tensor:
        """The reconstruction's image, its clipping bias undone where the noise was clipped.

        Everything before this (the guide, the fit, the held-out tests) estimates the mean of the
        clipped noisy image; only the returned image is mapped back to clean values.
        """
        image = super().final_image(out)
        if not any(self.clipped):
            return image
        values = image.detach().float().cpu().numpy()
        return torch.from_numpy(declip(values, self.noise_sigma_unit, *self.clipped)).to(image.device)

    def stop_reason(self, step: int, losses: dict[str, float]) -> str | None:
        """The discrepancy principle, for a plain DIP without held-out pixels."""
        if self.guide_name != "none" or self.holdout > 0:
            # a guided fit starts below the noise level, and held-out pixels judge the fit better
            return None
        self._recent.append(losses["data"])
        sigma = self.noise_sigma_unit
        if sigma > 0 and len(self._recent) == self._recent.maxlen:
            if np.mean(self._recent) <= sigma**2:
                return "discrepancy"
        return None

    def options(self) -> dict[str, Any]:
        """The recorded settings and the noise level used (estimated or given)."""
        return {
            **super().options(),
            "noise_sigma_unit": self.noise_sigma_unit,
            "noise_sigma": self.noise_sigma_unit * (self.layout.high - self.layout.low),
            "noise_sigma_source": self.sigma_source,
            "declipped": [
                end for end, on in zip(("low", "high"), getattr(self, "clipped", ()), strict=False) if on
            ],
            **(
                {"blend_weights": [round(float(w), 4) for w in self.blend_weights]}
                if self.blend_weights is not None
                else {}
            ),
        }
