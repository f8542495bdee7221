"""Watermark removal: K clean generators, one shared mask and colour, then inversion (Double-DIP)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.conversion import ANCHORS
from ..core.options import GeneratorOptions, option
from . import Aux, Demo, DemoSample, Inputs, Output, Sample, TaskEntry
from ._common import psnr

__all__ = ["ENTRY", "WatermarkOptions"]


@dataclass(frozen=True, kw_only=True)
class WatermarkOptions(GeneratorOptions):
    """Options of :class:`~napari_doubledip.core.tasks.watermark.WatermarkTask`.

    Parameters
    ----------
    watermark
        ``"white"`` (default), ``"black"``, ``"learn"`` (a learned colour), or a colour in the
        images' value range (one value per channel, or a scalar).
    net, mask_net
        Networks of the clean generators and of the mask generator.
    lr, mask_lr_factor
        Adam learning rate of the clean generators; the mask's is ``lr / mask_lr_factor``.
    exclusion_weight
        Weight of the exclusion loss between pairs of clean images.
    mask_sparsity
        Weight of an L1 penalty on the mask (mean opacity): keeps it at zero away from the
        watermark, where a false opacity would bias the inversion.
    mask_init
        The mask generator's initial opacity (shifts its output bias); 0 (default): from the
        data where the K images give the mark's support (the median opacity fitted over the
        images filled in under its strokes, within 0.05..0.9), else 0.1. The data alone cannot
        tell a false opacity from none (the clean generators absorb it), so where the mask
        starts is where it stays away from the mark: measured at 128², 400 steps, three
        photos, starting at 0.1 instead of 0.5 gave 31.8 vs 23.1 dB for a faint mark (opacity
        0.25; at 0.5 the cleaned photos were worse than the inputs) and 32.2 vs 31.7 dB for
        opacity 0.5; 0.02 gave 32.9 and 31.0.
    clean_mask
        Before inverting, zero the mask outside the watermark: keep pixels above the mask's Otsu
        threshold (between the watermark's opacity and the background's false opacity), drop
        connected parts smaller than ``min_part`` times the largest part. Measured on the
        benchmark's three photos (128², 120 s): 20.8 dB -> 28.2 dB, mask IoU 0.66 -> 0.85; the
        generator's mask keeps a low false opacity off the mark that the inversion amplifies.
    refine_alpha
        After the clean-up, re-estimate the opacity of every pixel where the mask is nonzero by
        least squares over all K images and channels, with the generators' outputs as the
        images under the mark (:func:`refine_opacity`): the mask generator draws smooth, soft
        edges and a false opacity beside the mark; the per-pixel fit keeps the mark's sharp
        edges and shrinks the rest to 0. Measured on the benchmark's three photos (128², 400
        steps): 28.2 dB -> 31.7 dB.
    min_part
        Smallest kept part of the watermark, as a fraction of its largest part.
    opaque_from, opaque_full
        Mask values between which the output moves from the inversion to the generator.
    inversion_denoise
        With K >= 2 images and no hint, the strength (non-local means' ``h``, unit range) of a
        denoising of the inverted pixels, weighted by the opacity
        (:func:`~napari_doubledip.core.postprocess.smooth_inverted`): the inversion multiplies a
        JPEG's noise around the mark by ``1 / (1 - m)``. 0.022: on two sets of public photos
        under the fotolia mark, JPEG-compressed at the fotolia photos' quality (85, 4:2:0), the
        inversion with the true opacity came 1.9 / 2.5 dB nearer the clean photos inside the
        mark, and scored the clean photos' own removal on the real-photo measure (BENCHMARKS.md,
        issue 15, fourth pass); stronger smoothing scores more there than a perfect removal.
    max_size_difference
        Largest size difference (pixels) that alignment accepts.
    align
        Where images of slightly different sizes line up: ``"centre"``, a corner
        (``"top-left"``, ``"top-right"``, ``"bottom-left"``, ``"bottom-right"``: a stamp placed by
        that corner), or ``"auto"`` (default): the anchor where the K images share the most edge
        (:func:`~napari_doubledip.core.priors.watermark.alignment_evidence`); equal sizes need none.
    """

    watermark: Any = option(
        "white",
        "the watermark's colour: white, black, learn (fit it), or a colour in the images' range",
        shown=True,
        choices=("white", "black", "learn"),
        cli_aliases=("--colour", "--color"),
    )
    mask_net: Any = option("mask", "network of the mask generator", net=True)
    mask_lr_factor: float = option(5.0, "the mask generator learns at lr / mask_lr_factor (slower)")
    exclusion_weight: float = option(0.1, "weight of the exclusion loss between pairs of clean images")
    mask_sparsity: float = option(0.0, "weight of an L1 penalty on the mask")
    mask_init: float = option(
        0.0,
        "the mask's starting opacity; 0: from the images (K >= 2), else 0.1 (faint, see-through "
        "marks); about 0.5 for nearly opaque ones (BENCHMARKS.md)",
        shown=True,
        minimum=0.0,
        maximum=0.9,
        decimals=2,
        cli_aliases=("--start-opacity",),
    )
    clean_mask: bool = option(True, "zero the mask outside the watermark before inverting")
    refine_alpha: bool = option(True, "re-estimate the opacity per pixel by least squares over the images")
    min_part: float = option(0.025, "smallest kept part of the watermark, as a fraction of the largest")
    opaque_from: float = option(0.75, "mask value where the output starts moving from inversion to generator")
    opaque_full: float = option(0.95, "mask value where the output is the generator's")
    inversion_denoise: float = option(
        0.022, "non-local means strength over the inverted pixels (K >= 2, no hint; 0: off)"
    )
    max_size_difference: int = option(16, "largest size difference (pixels) that alignment accepts")
    align: str = option(
        "auto",
        "where images of slightly different sizes line up: auto (where they share the most edge), "
        "centre, or a corner (a stamp by that corner)",
        shown=True,
        choices=("auto", *ANCHORS),
    )
    support: bool = option(
        True,
        "with K >= 2 images and no hint, find the mark where the images' gradients agree; change "
        "nothing outside it (no mark found: the inputs come back unchanged)",
    )
    support_margin: int = option(6, "pixels the estimated support is widened by")
    support_low: float = option(
        0.2, "hysteresis: outline pixels down to this fraction of the threshold join a strong outline"
    )

    def check(self) -> None:
        """Check the watermark options' ranges and their consistency."""
        super().check()
        if isinstance(self.watermark, str) and self.watermark not in ("white", "black", "learn"):
            raise ValueError(
                f"watermark must be 'white', 'black', 'learn' or a colour, got {self.watermark!r}"
            )
        if self.mask_lr_factor <= 0:
            raise ValueError("lr and mask_lr_factor must be > 0")
        if self.exclusion_weight < 0:
            raise ValueError(f"exclusion_weight must be >= 0, got {self.exclusion_weight}")
        if not 0 < self.opaque_from < self.opaque_full <= 1:
            raise ValueError("need 0 < opaque_from < opaque_full <= 1")
        if self.mask_sparsity < 0:
            raise ValueError(f"mask_sparsity must be >= 0, got {self.mask_sparsity}")
        if not 0 <= self.mask_init < 1:
            raise ValueError(f"mask_init must be in [0, 1) (0: from the data), got {self.mask_init}")
        if self.support_margin < 0:
            raise ValueError(f"support_margin must be >= 0, got {self.support_margin}")
        if not 0 < self.support_low <= 1:
            raise ValueError(f"support_low must be in (0, 1], got {self.support_low}")
        if self.align not in ("auto", *ANCHORS):
            raise ValueError(f"align must be 'auto' or one of {ANCHORS}, got {self.align!r}")
        if not self.inversion_denoise >= 0:
            raise ValueError(f"inversion_denoise must be >= 0, got {self.inversion_denoise}")
        if not 0 <= self.min_part < 1:
            raise ValueError(f"min_part must be in [0, 1), got {self.min_part}")


def _layers(size: int) -> list:
    from .. import samples

    images, _alpha, _clean = samples.watermarked_photos(size)
    return [(img, {"name": f"watermarked {i + 1}"}, "image") for i, img in enumerate(images)]


def _demo(size: int) -> DemoSample:
    from .. import samples

    images, alpha_mask, clean = samples.watermarked_photos(size=size)
    return DemoSample(
        inputs={f"input_{k}": im for k, im in enumerate(images)},
        truth={**{f"clean_{k}": c for k, c in enumerate(clean)}, "true_watermark_alpha": alpha_mask},
        args=(images,),
    )


def _score(sample: DemoSample, result: Any) -> tuple[dict[str, Any], dict[str, float], list[str]]:
    inputs, truth = sample.inputs, sample.truth
    k = len(result.images)
    before = float(np.mean([psnr(inputs[f"input_{i}"], truth[f"clean_{i}"]) for i in range(k)]))
    after = float(np.mean([psnr(result.images[i], truth[f"clean_{i}"]) for i in range(k)]))
    arrays = {f"result_{i}": im for i, im in enumerate(result.images)}
    arrays["watermark_mask"] = np.asarray(result.mask, np.float32)
    metrics = {"psnr_input_db": before, "psnr_result_db": after}
    return (
        arrays,
        metrics,
        [f"PSNR against the clean photos (mean of {k}): {before:.2f} dB -> {after:.2f} dB"],
    )


ENTRY = TaskEntry(
    name="watermark",
    title="Remove watermark",
    api="remove_watermark",
    task="napari_doubledip.core.tasks.watermark:WatermarkTask",
    steps=2000,  # the engine class's default_steps (a test checks)
    options=WatermarkOptions,
    help="remove a watermark shared by a group of images",
    description="Remove a watermark shared by two or more images (or by one image, given a hint "
    "marking roughly where it is).",
    outputs=(
        Output("clean_{i}", "clean", file="_clean"),
        Output("watermark", "watermark", visible=False),
        Output("mask", "watermark mask", kind="mask", visible=False, file="_mask", tiff=True),
        Output("mark", "watermark found", kind="rgba", visible=False, file="_mark", png=True),
    ),
    inputs=Inputs(group=True),
    aux=Aux(
        "hint",
        "mask",
        layer_types=("labels", "shapes"),
        help="Optional Labels or Shapes: nonzero / a box where the watermark may be "
        "(needed with a single image)",
        cli_help="(Y,X) image, nonzero where the watermark may be",
    ),
    sample=Sample("watermarked_photos", "Three watermarked photos (Remove watermark)", _layers),
    demo=Demo(_demo, _score, tiff=("watermark_mask", "true_watermark_alpha")),
    summary="Remove a watermark shared by K >= 2 images (or by one image, given a hint).",
    doc="""images
    K >= 2 images with the same watermark at the same place (sizes may differ by a few
    pixels: they are aligned by their centres or a corner, ``align``), or one image with ``hint``. A list: one array
    is one image, and a ``(K, Y, X)`` stack is refused (pass ``list(stack)``).
hint
    Optional ``(Y, X)`` array, nonzero where the watermark may be (a box or a rough mask).""",
    example="napari-doubledip watermark shots/ --out out/ --group-by folder --scheduler tcp://host:8786",
    order=4,
    result="WatermarkResult",
)
