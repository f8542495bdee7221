"""DIP denoising: fit the generator to the noisy image and stop before it fits the noise."""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from ...registry.denoise import DenoiseOptions
from ..guides import estimate_noise_sigma, fill_from_neighbours, nlm_guide
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
    guides = ("nlm",)
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

    @property
    def noise_sigma_unit(self) -> float:
        """The noise level in unit range (estimated on the first call when not given)."""
        if self.sigma is None:
            self.sigma = estimate_noise_sigma(self.unit)
        return self.sigma

    def compute_guide(self, unit: np.ndarray, unseen: np.ndarray) -> np.ndarray:
        """Non-local means of ``unit``, its ``unseen`` pixels first refilled from their neighbours."""
        sigma = self.noise_sigma_unit
        filled = fill_from_neighbours(unit, unseen, noise_sigma=sigma, seed=self.ctx.seed)
        return nlm_guide(filled, sigma)

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
        }
