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
    "ANCHORS",
    "centre_crops",
    "check_image",
    "check_mask",
    "as_array",
    "from_unit",
    "image_list",
    "mask_plane",
    "pad_amounts",
    "shape_layout",
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


def as_array(value: object, name: str = "image") -> np.ndarray:
    """``np.asarray(value)``, with a message naming ``name`` when it is not a rectangular array.

    Raises
    ------
    ValueError
        For ragged nested lists and other values numpy cannot make one array of.
    """
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"{name} is not a rectangular array of numbers (rows of different lengths?): "
            f"{type(value).__name__} that numpy cannot stack ({exc}); pass a 2-D (Y, X) or "
            "(Y, X, C) numpy array"
        ) from None


def image_list(images: object, name: str = "images") -> list[np.ndarray]:
    """The images of a task that takes several, as a list of arrays.

    A list or tuple is taken item by item (each may have its own shape). A single numpy array
    is one image when it is 2-D, or 3-D with at most 4 channels last (``(Y, X)``, ``(Y, X, C)``
    gray, RGB, RGBA). Any other array (``(K, Y, X)``, ``(K, Y, X, C)``, a ``(Y, X, C)`` of many
    channels) could be a stack of K images or one multichannel image: it is refused, with the
    two ways to say which (``list(array)`` for K images, ``[array]`` for one image).

    Raises
    ------
    ValueError
        For such an ambiguous array, and for items that are no rectangular arrays.
    """
    if isinstance(images, np.ndarray):
        arr = images
        if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] <= 4):
            return [arr]
        if arr.ndim in (3, 4):
            k = arr.shape[0]
            one = (
                f"[{name}] for one (Y, X, C) image of {arr.shape[2]} channels"
                if arr.ndim == 3
                else "or index it to one image"
            )
            raise ValueError(
                f"{name} is one array of shape {arr.shape}: pass a list of images instead — "
                f"list({name}) for {k} images of shape {arr.shape[1:]} along the first axis, {one}"
            )
        return [arr]
    if isinstance(images, list | tuple):
        return [as_array(img, f"{name}[{i}]") for i, img in enumerate(images)]
    raise TypeError(f"{name} must be a list of numpy arrays (or one array), got {type(images).__name__}")


def _span(low: float, high: float) -> float:
    """``high - low`` (1 when the range is empty); ``inf`` when it overflows float64."""
    with np.errstate(over="ignore"):
        return high - low if high > low else 1.0


def _scale_to_unit(data: np.ndarray, low: float, high: float) -> np.ndarray:
    """``(data - low) / (high - low)`` in float64, also for ranges wider than float64 holds."""
    scale = _span(low, high)
    values = data.astype(np.float64)
    if np.isfinite(scale):
        values -= low  # in place: the same values as ``(values - low) / scale``, without the temporaries
        values /= scale
        return values
    # e.g. -1e308..1e308: halve everything first (exact in binary floating point)
    return (values / 2 - low / 2) / (high / 2 - low / 2)


def check_image(image: object, name: str = "image") -> np.ndarray:
    """Check that ``image`` is an image :func:`to_unit` accepts, without converting it.

    Cheap (its shape, its dtype, and for floats whether every value is finite): the checks a
    run makes before it starts, on the caller's thread.

    Parameters
    ----------
    image
        The image (anything :func:`numpy.asarray` takes).
    name
        What to call the argument in error messages.

    Returns
    -------
    numpy.ndarray
        ``np.asarray(image)``.

    Raises
    ------
    ValueError
        For arrays that are not images this engine accepts, with what is accepted.
    """
    arr = as_array(image, name)
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
    return arr


def shape_layout(image: np.ndarray) -> ImageLayout:
    """The :class:`ImageLayout` of a checked image as far as its shape and dtype go.

    Its value range is not read (``low, high = 0, 1``) and it holds no alpha: for the checks
    of masks and hints against an image's size before the image is converted, not for
    converting anything back.
    """
    shape = tuple(int(s) for s in image.shape)
    channels = 1 if len(shape) == 2 else shape[2] - 1 if shape[2] == 4 else shape[2]
    return ImageLayout(shape=shape, dtype=image.dtype, low=0.0, high=1.0, channels=channels)


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
    arr = check_image(image, name)
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
    # (C, Y, X) float32 in one pass (the cast rounds as ``astype`` does)
    unit = np.ascontiguousarray(np.moveaxis(_scale_to_unit(data, low, high), -1, 0), dtype=np.float32)
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
        scale = _span(layout.low, layout.high) if layout.high > layout.low else 0.0
        if np.isfinite(scale):
            out = data * scale + layout.low
        else:  # a range wider than float64 holds: blend the ends instead
            out = layout.low * (1.0 - data) + layout.high * data
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


def _natural_range(layout: ImageLayout) -> tuple[float, float] | None:
    """The range that means black to white for an image's dtype, if it has one.

    bool: 0..1; uint8 and uint16: the dtype's range; floats within [0, 1]: 0..1. Other images
    (signed integers, floats beyond [0, 1]) have none.
    """
    if layout.dtype == bool:
        return 0.0, 1.0
    if layout.dtype == np.uint8 or layout.dtype == np.uint16:
        info = np.iinfo(layout.dtype)
        return float(info.min), float(info.max)
    if np.issubdtype(layout.dtype, np.floating) and layout.low >= 0.0 and layout.high <= 1.0:
        return 0.0, 1.0
    return None


def to_unit_jointly(
    images: list[np.ndarray], name: str = "images"
) -> tuple[list[np.ndarray], list[ImageLayout]]:
    """Convert several images to unit range with ONE shared value scale.

    Mixing models (``I = a * x + b * y``) only hold when every image is scaled the same way.
    Images of one dtype share the union of their ranges (for uint8/uint16: the dtype's range,
    and 0..1 for floats within [0, 1], so that white stays white). Images of different dtypes
    that each have a black-to-white range (uint8 0..255, uint16 0..65535, floats within [0, 1],
    bool) are each scaled by their own, so a uint8 image and a float one of the same scene meet
    in the middle, and each layout maps back into its own image's range. Other mixes (signed
    integers, floats beyond [0, 1]) share the union of their raw values.

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
    natural = [_natural_range(layout) for _, layout in converted]
    if len(dtypes) == 1:
        if natural[0] is not None and not np.issubdtype(next(iter(dtypes)), np.signedinteger):
            low, high = natural[0]
        ranges = [(low, high)] * len(converted)
    elif all(r is not None for r in natural):
        ranges = list(natural)  # type: ignore[arg-type]
    else:
        ranges = [(low, high)] * len(converted)
    units, layouts = [], []
    for (unit, layout), (lo, hi) in zip(converted, ranges, strict=True):
        own = _span(layout.low, layout.high)
        scale = _span(lo, hi)
        if np.isfinite(own) and np.isfinite(scale):
            rescaled = (unit.astype(np.float64) * own + layout.low - lo) / scale
        else:  # a range wider than float64 holds: the same sum on halves (exact in binary)
            half_own, half_scale = layout.high / 2 - layout.low / 2, hi / 2 - lo / 2
            rescaled = (unit.astype(np.float64) * half_own + layout.low / 2 - lo / 2) / half_scale
        units.append(rescaled.astype(np.float32))
        layouts.append(replace(layout, low=lo, high=hi if hi > lo else lo + 1.0))
    return units, layouts


#: Where images of slightly different sizes line up: their centres, or one of their corners.
ANCHORS = ("centre", "top-left", "top-right", "bottom-left", "bottom-right")


def centre_crops(
    shapes: list[tuple[int, ...]], max_difference: int = 16, anchor: str = "centre"
) -> tuple[tuple[int, int], list[tuple[slice, slice]]]:
    """The common ``(Y, X)`` area of images whose sizes differ a little, centred or by a corner.

    Parameters
    ----------
    shapes
        The images' shapes (``(Y, X)`` or ``(Y, X, C)``).
    max_difference
        Largest allowed difference in rows or columns between the biggest and the smallest image.
    anchor
        One of :data:`ANCHORS`: the area is centred in each image, or at that corner of it (a
        stamp by the bottom-right corner lines up by that corner).

    Returns
    -------
    common, crops
        The common ``(Y, X)`` size and, per image, the slices of that area in it.

    Raises
    ------
    ValueError
        If the sizes differ by more than ``max_difference`` pixels along Y or X, or the anchor
        is unknown.
    """
    if anchor not in ANCHORS:
        raise ValueError(f"anchor must be one of {ANCHORS}, got {anchor!r}")
    hs = [int(s[0]) for s in shapes]
    ws = [int(s[1]) for s in shapes]
    if max(hs) - min(hs) > max_difference or max(ws) - min(ws) > max_difference:
        raise ValueError(
            f"images cannot be aligned: their (Y, X) sizes {[s[:2] for s in shapes]} "
            f"differ by more than {max_difference} pixels (max_size_difference); images that share a "
            "watermark should show it at the same place and scale"
        )
    h, w = min(hs), min(ws)
    crops = []
    for hk, wk in zip(hs, ws, strict=True):
        y0 = 0 if anchor.startswith("top") else hk - h if anchor.startswith("bottom") else (hk - h) // 2
        x0 = 0 if anchor.endswith("left") else wk - w if anchor.endswith("right") else (wk - w) // 2
        crops.append((slice(y0, y0 + h), slice(x0, x0 + w)))
    return (h, w), crops
