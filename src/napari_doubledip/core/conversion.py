"""Image conversion between the caller's arrays and the engine's unit-range tensors.

Accepted images: 2-D gray ``(Y, X)``; ``(Y, X, C)`` for any C (C = 4 is RGBA: the alpha
channel is passed through untouched); bool, unsigned/signed integers or floats in any
range; at least :data:`MIN_SIZE` pixels along Y and X. Results come back with the input's
shape, dtype and value range.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

__all__ = [
    "MIN_SIZE",
    "ImageLayout",
    "centre_crops",
    "check_mask",
    "from_unit",
    "mask_plane",
    "pad_amounts",
    "to_unit",
    "to_unit_jointly",
]

MIN_SIZE = 16


@dataclass(frozen=True)
class ImageLayout:
    """What is needed to give an engine output back in the caller's layout.

    Attributes
    ----------
    shape, dtype
        The caller's array shape and dtype.
    low, high
        The value range the image was scaled from (maps to 0 and 1).
    channels
        Number of channels the engine works on (alpha excluded).
    alpha
        The untouched alpha channel of an RGBA image, else ``None``.
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    low: float
    high: float
    channels: int
    alpha: np.ndarray | None = None

    @property
    def spatial_shape(self) -> tuple[int, int]:
        """``(Y, X)``."""
        return self.shape[0], self.shape[1]


def _describe(image: np.ndarray) -> str:
    return f"shape {image.shape} and dtype {image.dtype}"


def to_unit(
    image: np.ndarray, *, name: str = "image", range_from: np.ndarray | None = None
) -> tuple[np.ndarray, ImageLayout]:
    """Convert an image to a float32 ``(C, Y, X)`` array in [0, 1].

    Parameters
    ----------
    image
        2-D gray or ``(Y, X, C)`` array (RGBA when C = 4) of any real dtype.
    name
        What to call the argument in error messages.
    range_from
        Optional ``(Y, X)`` bool array: take the value range from these pixels only (e.g. the
        known pixels of an image to inpaint).

    Returns
    -------
    unit, layout
        The converted array and the :class:`ImageLayout` that undoes the conversion.

    Raises
    ------
    ValueError
        For arrays that are not images this engine accepts, with what is accepted.
    """
    arr = np.asarray(image)
    accepted = (
        "accepted: 2-D gray (Y, X) or (Y, X, C) with C channels (C=4 is RGBA), "
        f"at least {MIN_SIZE}x{MIN_SIZE} pixels, of a bool, integer or float dtype"
    )
    if (
        arr.dtype == object
        or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool)
        or np.issubdtype(arr.dtype, np.complexfloating)
    ):
        raise ValueError(f"{name} has unsupported dtype {arr.dtype}; {accepted}")
    if arr.ndim not in (2, 3):
        raise ValueError(f"{name} has {arr.ndim} dimensions ({_describe(arr)}); {accepted}")
    if arr.ndim == 3 and arr.shape[2] < 1:
        raise ValueError(f"{name} has no channels ({_describe(arr)}); {accepted}")
    if min(arr.shape[:2]) < MIN_SIZE:
        raise ValueError(f"{name} is too small ({_describe(arr)}); {accepted}")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values; replace them before running")
    alpha = None
    if arr.ndim == 3 and arr.shape[2] == 4:
        alpha = arr[..., 3].copy()
        data = arr[..., :3]
    else:
        data = arr if arr.ndim == 3 else arr[..., None]
    if arr.dtype == bool:
        low, high = 0.0, 1.0
    else:
        ranged = data if range_from is None or not range_from.any() else data[range_from]
        low, high = float(ranged.min()), float(ranged.max())
    scale = high - low if high > low else 1.0
    unit = ((data.astype(np.float64) - low) / scale).astype(np.float32)
    unit = np.ascontiguousarray(np.moveaxis(unit, -1, 0))
    layout = ImageLayout(
        shape=tuple(arr.shape), dtype=arr.dtype, low=low, high=high, channels=unit.shape[0], alpha=alpha
    )
    return unit, layout


def from_unit(unit: np.ndarray, layout: ImageLayout) -> np.ndarray:
    """Convert a ``(C, Y, X)`` array in [0, 1] back to the caller's shape, dtype and range.

    Parameters
    ----------
    unit
        Engine output with ``layout.channels`` channels and the caller's Y and X size.
    layout
        As returned by :func:`to_unit`.
    """
    unit = np.clip(np.asarray(unit, dtype=np.float64), 0.0, 1.0)
    if unit.shape != (layout.channels, *layout.spatial_shape):
        raise ValueError(
            f"engine output has shape {unit.shape}, expected {(layout.channels, *layout.spatial_shape)}"
        )
    data = np.moveaxis(unit, 0, -1)
    out: np.ndarray
    if layout.dtype == bool:
        out = data >= 0.5
    else:
        scale = layout.high - layout.low if layout.high > layout.low else 0.0
        out = data * scale + layout.low
        if np.issubdtype(layout.dtype, np.integer):
            out = np.rint(out)
    out = out.astype(layout.dtype)
    if layout.alpha is not None:
        out = np.concatenate([out, layout.alpha[..., None]], axis=-1)
    elif len(layout.shape) == 2:
        out = out[..., 0]
    return out


def mask_plane(mask: np.ndarray) -> np.ndarray:
    """The ``(Y, X)`` plane that marks a mask or hint given as an image.

    2-D arrays are returned as they are. A ``(Y, X, C)`` array is reduced to the largest value
    (in magnitude) over its colour channels, except an RGBA array (C = 4) whose alpha varies: there the alpha
    marks the region (a box drawn as an opaque patch on a transparent image). An RGBA array with
    a constant alpha is read from its colour (the alpha says nothing about where the region is).

    Parameters
    ----------
    mask
        ``(Y, X)`` or ``(Y, X, C)`` array of any real dtype.

    Returns
    -------
    numpy.ndarray
        ``(Y, X)`` array of the input's dtype (a view where possible); other shapes unchanged.
    """
    m = np.asarray(mask)
    if m.ndim != 3:
        return m
    if m.shape[2] == 4:
        alpha = m[..., 3]
        if alpha.min() != alpha.max():
            return alpha
        m = m[..., :3]
    return np.abs(m).max(axis=2)


def check_mask(mask: np.ndarray, layout: ImageLayout, *, name: str = "mask") -> np.ndarray:
    """Validate a 2-D (or ``(Y, X, C)`` image-like) mask against an image; return it as bool ``(Y, X)``.

    Nonzero means *set*. A ``(Y, X, C)`` mask is reduced by :func:`mask_plane` (the alpha of an
    RGBA mask whose alpha varies, else the largest value over the colour channels).
    """
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[:2] == layout.spatial_shape:
        m = mask_plane(m)
    if m.ndim != 2 or m.shape != layout.spatial_shape:
        raise ValueError(
            f"{name} has shape {m.shape} but the image is {layout.shape}; the {name} must be "
            f"2-D with the image's (Y, X) size {layout.spatial_shape}"
        )
    if np.issubdtype(m.dtype, np.floating) and not np.all(np.isfinite(m)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return m != 0


def pad_amounts(size: int, multiple: int) -> tuple[int, int]:
    """Padding ``(before, after)`` that brings ``size`` up to a multiple of ``multiple``.

    The padded size is at least ``2 * multiple``, so that the deepest feature maps of a net
    are at least 2 pixels wide (BatchNorm needs more than one value per channel).
    """
    total = max((-size) % multiple, 2 * multiple - size)
    return total // 2, total - total // 2


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


def centre_crops(
    shapes: list[tuple[int, ...]], max_difference: int = 16
) -> tuple[tuple[int, int], list[tuple[slice, slice]]]:
    """The common centred ``(Y, X)`` area of images whose sizes differ a little.

    Parameters
    ----------
    shapes
        The images' shapes (``(Y, X)`` or ``(Y, X, C)``).
    max_difference
        Largest allowed difference in rows or columns between the biggest and the smallest image.

    Returns
    -------
    common, crops
        The common ``(Y, X)`` size and, per image, the slices of that area centred in it.

    Raises
    ------
    ValueError
        If the sizes differ by more than ``max_difference`` pixels along Y or X.
    """
    hs = [int(s[0]) for s in shapes]
    ws = [int(s[1]) for s in shapes]
    if max(hs) - min(hs) > max_difference or max(ws) - min(ws) > max_difference:
        raise ValueError(
            f"images cannot be aligned by their centres: their (Y, X) sizes {[s[:2] for s in shapes]} "
            f"differ by more than {max_difference} pixels (max_size_difference); images that share a "
            "watermark should show it at the same place and scale"
        )
    h, w = min(hs), min(ws)
    crops = []
    for hk, wk in zip(hs, ws, strict=True):
        y0, x0 = (hk - h) // 2, (wk - w) // 2
        crops.append((slice(y0, y0 + h), slice(x0, x0 + w)))
    return (h, w), crops
