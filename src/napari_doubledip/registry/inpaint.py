"""Inpainting: one DIP generator fitted on the known pixels fills the missing ones."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.options import option
from . import Aux, Demo, DemoSample, Output, Sample, TaskEntry
from ._common import psnr_score
from .denoise import ReconstructionOptions

__all__ = ["ENTRY", "InpaintOptions"]


@dataclass(frozen=True, kw_only=True)
class InpaintOptions(ReconstructionOptions):
    """Options of :class:`~napari_doubledip.core.tasks.inpaint.InpaintTask`."""

    guide: str = option(
        "auto",
        "classical filling the generator competes with: 'refined' (the default, 'auto'): biharmonic "
        "filling and its refinements by non-local means with the known pixels put back, blended by "
        "weights fitted on held-out known pixels (biharmonic alone where they do not confirm it); "
        "'biharmonic': biharmonic filling; 'none': the plain DIP, from noise alone",
        choices=("auto", "refined", "biharmonic", "none"),
    )
    keep_known: bool = option(
        True, "return the known pixels as given (the generator's only where missing)", shown=True
    )


def _layers(size: int) -> list:
    from .. import samples

    damaged, mask, _clean = samples.photo_with_missing_pixels(size)
    return [
        (mask.astype(np.uint8), {"name": "missing pixels", "visible": False}, "labels"),
        (damaged, {"name": "damaged coffee"}, "image"),
    ]


def _demo(size: int) -> DemoSample:
    from .. import samples

    damaged, mask, clean = samples.photo_with_missing_pixels(size=size)
    return DemoSample(inputs={"input": damaged, "mask": mask}, truth={"clean": clean}, args=(damaged, mask))


ENTRY = TaskEntry(
    name="inpaint",
    title="Inpaint",
    api="inpaint",
    task="napari_doubledip.core.tasks.inpaint:InpaintTask",
    steps=3000,  # the engine class's default_steps (a test checks)
    options=InpaintOptions,
    help="fill the missing pixels of each image (--mask)",
    description="Fill missing pixels: the network only sees the known ones.",
    outputs=(Output("image", "inpainted"),),
    aux=Aux(
        "mask",
        "mask",
        required=True,
        layer_types=("labels", "shapes"),
        help="Labels or Shapes: nonzero / inside a shape = missing pixel",
        cli_help="mask file for all inputs, or a folder/glob of masks matched by name "
        "(img.png <- img.png, img_mask.png, mask_img.png); nonzero = missing pixel",
        per_image=True,
        invertible=True,
    ),
    sample=Sample("missing_pixels", "Photo with missing pixels + mask (Inpaint)", _layers),
    demo=Demo(_demo, psnr_score),
    summary="Fill the missing pixels of an image with a Deep Image Prior.",
    doc="""image
    2-D gray or ``(Y, X, C)`` image of any dtype and range (values under the mask are ignored).
mask
    ``(Y, X)``; True/nonzero where a pixel is missing. The loss sees known pixels only.""",
    example="napari-doubledip inpaint scans/*.png --mask masks/ --out filled/",
    order=1,
    result="ImageResult",
)
