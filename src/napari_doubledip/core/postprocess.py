"""Watermark clean-up after the fit: keep the mark's own parts, re-fit its opacity per pixel, invert it."""

from __future__ import annotations

from typing import Any

import numpy as np

from .formation import solve_second

__all__ = ["invert_overlay", "keep_watermark_parts", "refine_chroma", "refine_opacity", "smooth_inverted"]

#: Smallest ``1 - opacity`` the inversion divides by (an opaque pixel would divide by 0).
MIN_TRANSPARENCY = 1e-3
#: A mask whose values span less than this has no two-level structure to threshold.
FLAT_MASK_SPAN = 0.05


def keep_watermark_parts(mask: np.ndarray, min_part: float = 0.025) -> np.ndarray:
    """Zero a soft watermark mask outside its watermark.

    Pixels at or below the mask's Otsu threshold, and connected parts above it smaller than
    ``min_part`` times the largest part, are set to 0; the rest keep their opacity. A mask
    with no clear two-level structure (nearly constant) is returned unchanged.
    """
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    m = np.asarray(mask, np.float32)
    if float(m.max() - m.min()) < FLAT_MASK_SPAN:
        return m
    region = m > threshold_otsu(m)
    labels, n = ndimage.label(region)
    if n == 0:
        return m
    sizes = np.bincount(labels.ravel())[1:]
    keep = np.zeros(n + 1, bool)
    keep[1:] = sizes >= min_part * sizes.max()
    return np.where(keep[labels], m, 0.0).astype(np.float32)


def refine_opacity(
    images: np.ndarray, generated: np.ndarray, mask: np.ndarray, colour: np.ndarray, ridge: float = 0.04
) -> np.ndarray:
    """Per-pixel least-squares opacity of a watermark of known colour, where ``mask > 0``.

    Solves ``I_k - G_k = a (w - G_k)`` for ``a`` at each pixel over all images ``k`` and
    channels, shrunk towards 0 by a ridge of ``ridge * (1 - mask)**2`` per image and channel:
    where ``w - G_k`` is small the data cannot tell the opacity, and a false opacity is what the
    inversion amplifies; where the mask itself is nearly opaque the shrinkage fades, because
    there the inversion divides by ``1 - a`` and a small bias towards 0 leaves much of the mark
    in the image. ``images``/``generated``: ``(K, C, Y, X)``, ``mask``: ``(Y, X)``, ``colour``:
    ``(C,)``, all unit range. Returns the new ``(Y, X)`` mask in [0, 1], zero where ``mask`` is
    zero.
    """
    c = np.asarray(colour, np.float64)[None, :, None, None]
    g = np.asarray(generated, np.float64)
    m = np.clip(np.asarray(mask, np.float64), 0.0, 1.0)
    num = ((np.asarray(images, np.float64) - g) * (c - g)).sum((0, 1))
    den = ((c - g) ** 2).sum((0, 1))
    shrink = ridge * (1.0 - m) ** 2 * g.shape[0] * g.shape[1]
    alpha = np.clip(num / np.maximum(den + shrink, 1e-12), 0.0, 1.0)
    return np.where(m > 0, alpha, 0.0).astype(np.float32)


def invert_overlay(
    images: np.ndarray,
    generated: np.ndarray,
    mask: np.ndarray,
    colour: np.ndarray,
    opaque_from: float,
    opaque_full: float,
) -> list[np.ndarray]:
    """Per image, undo a semi-transparent overlay; take the generator's output where it is opaque.

    Inverts ``I = m * w + (1 - m) * y`` for ``y`` (:func:`~napari_doubledip.core.formation.solve_second`),
    which keeps all the detail where the mark is semi-transparent, and moves linearly to the
    generator's output as ``m`` goes from ``opaque_from`` to ``opaque_full``, where the inversion
    would amplify errors by ``1 / (1 - m)``.

    Parameters
    ----------
    images, generated
        ``(K, C, Y, X)`` watermarked images and the clean generators' outputs, unit range.
    mask
        ``(Y, X)`` opacity in [0, 1].
    colour
        ``(C,)`` watermark colour, or ``(C, Y, X)`` a colour per pixel, unit range.
    opaque_from, opaque_full
        Opacities where the blend towards the generator starts and where it is complete.

    Returns
    -------
    The K cleaned ``(C, Y, X)`` images, clipped to [0, 1].
    """
    m = mask[None]
    c = colour[:, None, None] if colour.ndim == 1 else colour
    blend = np.clip((m - opaque_from) / (opaque_full - opaque_from), 0.0, 1.0)
    out = []
    for unit, gen in zip(images, generated, strict=True):
        inverted = solve_second(unit, m, c, floor=MIN_TRANSPARENCY)
        out.append(np.clip((1 - blend) * inverted + blend * gen, 0.0, 1.0))
    return out


def smooth_inverted(
    cleaned: np.ndarray, mask: np.ndarray, strength: float, full: float = 0.4, opaque_from: float = 0.75
) -> np.ndarray:
    """Non-local means over the inverted pixels, weighted by the opacity.

    Inverting ``I = m * w + (1 - m) * y`` multiplies the images' own noise by ``1 / (1 - m)``
    (a JPEG's ringing and blocks around the mark: x1.8 at the fotolia mark's 0.44), which is
    left as a dotted trace of the mark's strokes. Each image is denoised (scikit-image's
    non-local means, 3-px patches, ``h = strength``) on the mark's bounding box and blended
    in with weight ``min(m / full, 1)`` where ``0 < m < opaque_from`` (where the inversion was
    used); elsewhere the pixels are returned unchanged.

    Parameters
    ----------
    cleaned
        ``(K, C, Y, X)`` inverted images, unit range.
    mask
        ``(Y, X)`` opacity the inversion used.
    strength
        Non-local means' ``h`` (unit range); 0 returns a copy.
    full, opaque_from
        Opacity from which the denoised image is taken whole; where the inversion stops.

    Returns
    -------
    numpy.ndarray
        ``(K, C, Y, X)`` float32.
    """
    from skimage.restoration import denoise_nl_means

    out = np.array(cleaned, np.float32, copy=True)
    weight = np.clip(mask / full, 0.0, 1.0) * ((mask > 0) & (mask < opaque_from))
    if strength <= 0 or not weight.any():
        return out
    ys, xs = np.nonzero(weight)
    box = (slice(max(ys.min() - 4, 0), ys.max() + 5), slice(max(xs.min() - 4, 0), xs.max() + 5))
    w = weight[box].astype(np.float32)
    for image in out:
        part = np.moveaxis(image[:, box[0], box[1]], 0, -1).astype(np.float64)
        smooth = denoise_nl_means(part, h=strength, patch_size=3, patch_distance=4, channel_axis=-1)
        smooth = np.moveaxis(smooth, -1, 0).astype(np.float32)
        image[:, box[0], box[1]] = w * smooth + (1 - w) * image[:, box[0], box[1]]
    return out


#: JPEG's RGB -> YCbCr (full range, chroma centred on 0).
_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
#: A mark whose colour's chroma (YCbCr, unit range) is under this is white or grey: neutral.
NEUTRAL_CHROMA = 0.02
#: The chroma's edges are counted after a Gaussian of this many px: counted raw, the inversion's
#: amplified JPEG noise made the choice scale the chroma back too little (with the true opacity on
#: public photos under the fotolia mark, JPEG 85 4:2:0: -1.1 dB inside the mark; at 1 px +2.4 and
#: +0.7 dB over the plain inversion; 1.5 and 2.5 px about the same).
CHROMA_SMOOTH = 1.0


def _edges(plane: np.ndarray, smooth: float = 0.0) -> float:
    """Charbonnier sum of a plane's forward differences (its edges), after a Gaussian of ``smooth`` px."""
    if smooth > 0:
        from scipy import ndimage

        plane = ndimage.gaussian_filter(plane, smooth)
    return float(
        np.sqrt(np.diff(plane, axis=0) ** 2 + 1e-6).sum() + np.sqrt(np.diff(plane, axis=1) ** 2 + 1e-6).sum()
    )


def refine_chroma(
    images: np.ndarray,
    cleaned: np.ndarray,
    mask: np.ndarray,
    colour: np.ndarray,
    area: np.ndarray,
    gains: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25),
    blurs: tuple[float, ...] = (0.0, 1.0, 1.5, 2.0),
    opaque_from: float = 0.75,
) -> tuple[np.ndarray, list[list[Any]]]:
    """A neutral (white or grey) mark's chroma undone per image, as the photo took it; the luma kept.

    A white mark at opacity ``m`` scales a photo's chroma (YCbCr) by ``1 - m``, but real photos
    do not take it so: JPEG keeps the chroma at half resolution (the mark's chroma is blurred
    by 1-2 px) and a mark blended in another colour space scales it less, or not at all. An
    inversion that scales it back by ``1 / (1 - m)`` then draws coloured rims around the
    strokes (orange on yellow stone, dark blue on sky). Per image and chroma channel, the
    input's chroma divided by ``1 - g * blur_s(m)`` for ``g`` in ``gains`` and ``s`` in
    ``blurs`` (px), or ``cleaned``'s own chroma, whichever has the fewest edges over ``area``
    (the matting model's prior: a photo's edges are sparse; counted after a Gaussian of
    :data:`CHROMA_SMOOTH` px, so that the noise the inversion amplifies does not decide);
    ``cleaned``'s luma is kept. Only
    for a neutral mark (``colour``'s chroma under :data:`NEUTRAL_CHROMA` wherever ``m > 0``)
    and where ``0 < m < opaque_from`` (where it was inverted); otherwise ``cleaned`` comes
    back.

    Parameters
    ----------
    images, cleaned
        ``(K, 3, Y, X)`` inputs and cleaned images, unit range, RGB.
    mask
        ``(Y, X)`` opacity used.
    colour
        ``(3,)`` or ``(3, Y, X)`` the mark's colour.
    area
        Boolean ``(Y, X)``: where the mark may be (the choice is judged on its bounding box).
    gains, blurs, opaque_from
        As above.

    Returns
    -------
    cleaned, choices
        ``(K, 3, Y, X)`` float32, and per image and chroma channel ``"kept"`` or ``(s, g)``.
    """
    from scipy import ndimage

    out = np.array(cleaned, np.float32, copy=True)
    where = area & (mask > 0) & (mask < opaque_from)
    if images.shape[1] != 3 or not where.any():
        return out, []
    c = np.asarray(colour, np.float64)
    c = c.reshape(3, 1, 1) if c.ndim == 1 else c
    chroma = np.abs(np.einsum("ij,jyx->iyx", _YCC[1:], np.broadcast_to(c, (3, *mask.shape))))
    if (chroma.max(0)[mask > 0] > NEUTRAL_CHROMA).any():
        return out, []
    ys, xs = np.nonzero(area)
    box = (slice(max(ys.min() - 3, 0), ys.max() + 4), slice(max(xs.min() - 3, 0), xs.max() + 4))
    m = np.asarray(mask, np.float64)
    blurred = {s: (ndimage.gaussian_filter(m, s) if s > 0 else m)[box] for s in blurs}
    inside = where[box]
    choices: list[list[Any]] = []
    for k, image in enumerate(np.asarray(images, np.float64)):
        ycc_in = np.einsum("ij,jyx->iyx", _YCC, image[:, box[0], box[1]])
        ycc_out = np.einsum("ij,jyx->iyx", _YCC, out[k][:, box[0], box[1]].astype(np.float64))
        row: list[Any] = []
        for ch in (1, 2):
            plane = ycc_out[ch]
            best, found = _edges(plane, CHROMA_SMOOTH), plane
            pick_: Any = "kept"
            for s in blurs:
                for g in gains:
                    candidate = np.where(inside, ycc_in[ch] / (1 - np.clip(g * blurred[s], 0.0, 0.9)), plane)
                    energy = _edges(candidate, CHROMA_SMOOTH)
                    if energy < best:
                        best, pick_, found = energy, (s, g), candidate
            ycc_out[ch] = found
            row.append(pick_)
        choices.append(row)
        rgb = np.clip(np.einsum("ij,jyx->iyx", np.linalg.inv(_YCC), ycc_out), 0.0, 1.0)
        out[k][:, box[0], box[1]] = np.where(inside, rgb, out[k][:, box[0], box[1]])
    return out, choices
