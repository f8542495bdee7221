"""napari sample data (File ▸ Open Sample ▸ napari-doubledip): one sample per task, no downloads.

Each function returns napari ``LayerData`` tuples ``(data, kwargs, layer_type)`` built from
:mod:`napari_doubledip.samples`. This module imports neither torch nor napari.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import samples

__all__ = [
    "SAMPLE_SIZE",
    "hazy_photo",
    "missing_pixels",
    "mixtures",
    "noisy_photo",
    "segmentation_composite",
    "watermarked_photos",
]

#: Height and width of the sample images (small enough for a CPU run of a minute or two).
SAMPLE_SIZE = 128

LayerData = tuple[Any, dict[str, Any], str]


def noisy_photo() -> list[LayerData]:
    """The astronaut with Gaussian noise (sigma 25/255): input of the Denoise widget."""
    noisy, _clean = samples.noisy_photo(SAMPLE_SIZE)
    return [(noisy, {"name": "noisy astronaut"}, "image")]


def missing_pixels() -> list[LayerData]:
    """The coffee photo with half its pixels missing, and the mask (nonzero = missing) as Labels."""
    damaged, mask, _clean = samples.photo_with_missing_pixels(SAMPLE_SIZE)
    return [
        (mask.astype(np.uint8), {"name": "missing pixels", "visible": False}, "labels"),
        (damaged, {"name": "damaged coffee"}, "image"),
    ]


def segmentation_composite() -> list[LayerData]:
    """A textured horse on a photo, and a few hint strokes (1 = foreground, 2 = background)."""
    image, _true_mask, hints = samples.segmentation_composite(SAMPLE_SIZE)
    return [
        (image, {"name": "composite"}, "image"),
        (hints, {"name": "hints (1 fg, 2 bg)"}, "labels"),
    ]


def mixtures() -> list[LayerData]:
    """Two mixtures of the same two photos with different weights: input of Separate layers."""
    images, _layers = samples.mixtures(SAMPLE_SIZE)
    return [(img, {"name": f"mixture {i + 1}"}, "image") for i, img in enumerate(images)]


def watermarked_photos() -> list[LayerData]:
    """Three photos sharing one semi-transparent logo: input of Remove watermark."""
    images, _alpha, _clean = samples.watermarked_photos(SAMPLE_SIZE)
    return [(img, {"name": f"watermarked {i + 1}"}, "image") for i, img in enumerate(images)]


def hazy_photo() -> list[LayerData]:
    """A photo under synthetic haze: input of Dehaze."""
    hazy, _clean, _transmission, _airlight = samples.hazy_photo(SAMPLE_SIZE)
    return [(hazy, {"name": "hazy rocket"}, "image")]
