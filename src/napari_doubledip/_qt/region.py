"""Which part of an image a widget runs on: the whole image, the region in view, or a rectangle.

A run on a region is the quick way to try a task on a large image: the widget crops the frames
(and their mask, hints or box) to the region, and the outputs land in place over the image
(their ``translate`` moves them to the region's corner). Everything here runs on the main thread
and reads only public napari layer attributes (``corner_pixels``, ``data_to_world``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.conversion import MIN_SIZE
from .run_model import InputError, frame_shape, shapes_box

__all__ = [
    "REGION_VIEW",
    "REGION_WHOLE",
    "Region",
    "choose_region",
    "rectangle_region",
    "region_choices",
    "view_region",
]

#: The region choice "the whole image".
REGION_WHOLE = "whole"
#: The region choice "the part of the image in view".
REGION_VIEW = "view"


@dataclass(frozen=True)
class Region:
    """Rows ``y0:y1`` and columns ``x0:x1`` (slice bounds) of an image's pixel grid.

    Attributes
    ----------
    y0, y1, x0, x1
        The region's first row, the row after its last, and the same for columns.
    """

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def shape(self) -> tuple[int, int]:
        """The region's (rows, columns)."""
        return self.y1 - self.y0, self.x1 - self.x0

    def crop(self, array: np.ndarray) -> np.ndarray:
        """A private copy of the region of a (Y, X[, C]) array."""
        return np.array(array[self.y0 : self.y1, self.x0 : self.x1], copy=True)

    def box_inside(self, box: Sequence[float]) -> list[float]:
        """A box ``[y0, x0, y1, x1]`` in the image's pixels moved into the region's pixels (clipped to it).

        Raises
        ------
        InputError
            If the box and the region do not overlap.
        """
        height, width = self.shape
        y0, x0 = max(0.0, box[0] - self.y0), max(0.0, box[1] - self.x0)
        y1, x1 = min(float(height), box[2] - self.y0), min(float(width), box[3] - self.x0)
        if y1 <= y0 or x1 <= x0:
            raise InputError(
                "The box lies outside the region the run is limited to: draw the box inside the "
                "region, or choose a larger region (or the whole image)"
            )
        return [y0, x0, y1, x1]

    def as_list(self) -> list[int]:
        """``[y0, y1, x0, x1]``, as the CLI's ``--region Y0:Y1,X0:X1`` and the records give it."""
        return [self.y0, self.y1, self.x0, self.x1]


def region_choices(viewer: Any) -> list[tuple[str, Any]]:
    """The region combo box's choices: the whole image, the region in view, each Shapes layer's rectangle."""
    from napari.layers import Shapes

    choices: list[tuple[str, Any]] = [("whole image", REGION_WHOLE), ("region in view", REGION_VIEW)]
    choices += [
        (f"rectangle in {layer.name!r}", layer) for layer in viewer.layers if isinstance(layer, Shapes)
    ]
    return choices


def _clipped(y0: float, y1: float, x0: float, x1: float, shape: tuple[int, ...], what: str) -> Region | None:
    """The region clipped to a frame of ``shape``; ``None`` when it covers the whole frame.

    Raises
    ------
    InputError
        If nothing of the frame is inside, or the region is under :data:`MIN_SIZE` pixels a side
        (the smallest image a task takes).
    """
    height, width = int(shape[0]), int(shape[1])
    region = Region(
        int(np.clip(y0, 0, height)),
        int(np.clip(y1, 0, height)),
        int(np.clip(x0, 0, width)),
        int(np.clip(x1, 0, width)),
    )
    rows, cols = region.shape
    if rows < MIN_SIZE or cols < MIN_SIZE:
        raise InputError(
            f"{what} holds {max(rows, 0)} x {max(cols, 0)} pixels of the {height} x {width} image; a region "
            f"needs at least {MIN_SIZE} x {MIN_SIZE}: zoom out, draw a larger rectangle, or choose the whole image"
        )
    if region == Region(0, height, 0, width):
        return None
    return region


def view_region(layer: Any) -> Region | None:
    """The part of ``layer``'s current frame in view on the canvas (``None``: all of it is).

    Read from the layer's ``corner_pixels`` (the canvas's corners in the layer's data pixels, which
    napari updates on every draw); for a multiscale layer they are scaled to the full resolution.

    Raises
    ------
    InputError
        If too little of the image is in view.
    """
    corners = np.asarray(layer.corner_pixels, dtype=float)[:, -2:]
    if getattr(layer, "multiscale", False):
        factors = np.asarray(layer.downsample_factors[layer.data_level], dtype=float)[-2:]
        corners = corners * factors
    if not np.any(corners[1] > corners[0]):  # not drawn yet: napari has not set the corners
        return None
    (y0, x0), (y1, x1) = corners[0], corners[1] + 1  # the last corner pixel is inside
    return _clipped(y0, y1, x0, x1, frame_shape(layer), "The region in view")


def rectangle_region(shapes: Any, layer: Any) -> Region | None:
    """The pixels of ``layer``'s frame inside the last rectangle of a Shapes layer (``None``: all of them).

    Raises
    ------
    InputError
        If the layer holds no rectangle, or the rectangle is off the image or too small.
    """
    y0, x0, y1, x1 = shapes_box(shapes, layer)
    return _clipped(y0, y1, x0, x1, frame_shape(layer), f"The rectangle in {shapes.name!r}")


def choose_region(choice: Any, layer: Any) -> Region | None:
    """The region a form's choice picks of ``layer`` (``None``: the whole image).

    Parameters
    ----------
    choice
        :data:`REGION_WHOLE`, :data:`REGION_VIEW` or a Shapes layer.
    layer
        The (first) input image layer.

    Raises
    ------
    InputError
        If the region cannot be used (see :func:`view_region`, :func:`rectangle_region`).
    """
    if choice is None or choice == REGION_WHOLE:
        return None
    if isinstance(choice, str):
        if choice == REGION_VIEW:
            return view_region(layer)
        raise InputError(f"Unknown region choice {choice!r}")
    return rectangle_region(choice, layer)
