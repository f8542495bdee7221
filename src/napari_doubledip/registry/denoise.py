"""Denoising: one DIP generator fitted to the noisy image, stopped at the noise level."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.options import GeneratorOptions, option
from . import Demo, DemoSample, Output, Sample, TaskEntry
from ._common import psnr, psnr_score

__all__ = ["DenoiseOptions", "ENTRY", "ReconstructionOptions"]


@dataclass(frozen=True, kw_only=True)
class ReconstructionOptions(GeneratorOptions):
    """Options of the one-generator reconstruction tasks (denoising, inpainting)."""

    guide: str = option(
        "auto",
        "classical estimate the generator builds on: 'auto' (non-local means for denoising, biharmonic "
        "filling for inpainting) or 'none' (the plain DIP, from noise alone)",
        choices=("auto", "none"),
    )
    holdout: float = option(
        0.05,
        "share of the pixels left out of the fit to judge it: the run returns the output that predicts "
        "them best and stops once that stops improving (0: no held-out pixels)",
        minimum=0.0,
        maximum=0.5,
    )

    patch: int = option(
        128,
        "training steps on large images fit a random patch of this many pixels a side (full-frame "
        "outputs every few steps): the step cost stops growing with the image; 0: whole frame",
        minimum=0,
    )

    def check(self) -> None:
        """Check the generator options and the held-out share (0 to 0.5)."""
        super().check()
        if not isinstance(self.patch, int) or isinstance(self.patch, bool) or self.patch < 0:
            raise ValueError(f"patch must be an integer >= 0 (0: whole frame), got {self.patch!r}")
        if not isinstance(self.holdout, int | float) or not 0 <= self.holdout <= 0.5:
            raise ValueError(f"holdout must be a number in [0, 0.5], got {self.holdout!r}")
        if not isinstance(self.guide, str):
            raise ValueError(f"guide must be a string, got {self.guide!r}")


@dataclass(frozen=True, kw_only=True)
class DenoiseOptions(ReconstructionOptions):
    """Options of :class:`~napari_doubledip.core.tasks.denoise.DenoiseTask`."""

    guide: str = option(
        "auto",
        "classical estimate the generator builds on: 'sure' (the default, 'auto'): non-local means at "
        "several strengths and patch sizes and wavelet shrinkage, blended by the weights that minimise "
        "Stein's unbiased risk estimate; 'nlm': scikit-image's non-local means (h = 0.8 sigma); "
        "'none': the plain DIP, from noise alone",
        choices=("auto", "sure", "nlm", "none"),
    )
    noise_sigma: float | None = option(
        None,
        "noise standard deviation in the image's units (None: estimated); with early stopping the run "
        "ends once the fit reaches it (the discrepancy principle)",
    )

    declip: bool = option(
        True,
        "where the image saturates (many values at its darkest or brightest level), its noise was "
        "clipped and every average is biased (0.4 sigma too bright at black): map the result back "
        "to clean values (off: return the denoised values as they are)",
    )

    def check(self) -> None:
        """Check the reconstruction options and that the noise level is not negative."""
        super().check()
        if self.noise_sigma is not None and self.noise_sigma < 0:
            raise ValueError(f"noise_sigma must be >= 0, got {self.noise_sigma}")


def _layers(size: int) -> list:
    from .. import samples

    noisy, _clean = samples.noisy_photo(size)
    return [(noisy, {"name": "noisy astronaut"}, "image")]


def _demo(size: int) -> DemoSample:
    from .. import samples

    noisy, clean = samples.noisy_photo(size=size)
    return DemoSample(inputs={"input": noisy}, truth={"clean": clean}, args=(noisy,))


def _score(sample: DemoSample, result: object) -> tuple[dict, dict, list[str]]:
    """PSNR of input and result, and of non-local means on the same input: the tool it must beat."""
    import numpy as np

    from ..core.guides import estimate_noise_sigma, nlm_guide  # numpy and scipy only

    arrays, metrics, lines = psnr_score(sample, result)
    noisy = np.asarray(sample.inputs["input"], np.float32)
    unit = np.moveaxis(noisy if noisy.ndim == 3 else noisy[..., None], -1, 0)
    nlm = np.moveaxis(nlm_guide(unit, estimate_noise_sigma(unit)), 0, -1).reshape(noisy.shape)
    metrics["psnr_nlm_db"] = psnr(nlm, sample.truth["clean"])
    lines.append(f"non-local means (scikit-image) on the same input: {metrics['psnr_nlm_db']:.2f} dB")
    return arrays, metrics, lines


ENTRY = TaskEntry(
    name="denoise",
    title="Denoise",
    api="denoise",
    task="napari_doubledip.core.tasks.denoise:DenoiseTask",
    steps=3000,  # the engine class's default_steps (a test checks)
    options=DenoiseOptions,
    help="remove noise from each image",
    description="Fit a network to the noisy image; it learns the image before the noise. "
    "Early stop ends the run at the estimated noise level.",
    outputs=(Output("image", "denoised"),),
    sample=Sample("noisy_photo", "Noisy photo (Denoise)", _layers),
    demo=Demo(_demo, _score),
    summary="Denoise an image with a Deep Image Prior.",
    doc="""image
    2-D gray or ``(Y, X, C)`` image of any dtype and range, at least 16x16.""",
    example="napari-doubledip denoise photos/ --out clean/ --max-seconds 60\n"
    "napari-doubledip denoise movie.tif --frames all --out out/ --workers 4",
    order=0,
    result="ImageResult",
)
