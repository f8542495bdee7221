"""Where a watermark shared by K aligned images lies, and whether removing it worked.

What the images share is the strongest cue (Dekel et al., CVPR 2017, "On the effectiveness of
visible watermarks"): an edge of the mark is in every image at the same place, an edge of a
photo's own scene is not. These classical estimates find the mark's support and outline, fill
the images in under its strokes, and judge cleaned images by what is left of the shared outline.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..conversion import mask_plane

__all__ = [
    "edge_energy",
    "estimate_support",
    "fill_area",
    "fill_under",
    "alignment_evidence",
    "fit_overlay",
    "hint_region",
    "keep_removals",
    "opaque_area",
    "pick_per_part",
    "shared_gradient",
]


def _gradients(units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobel gradients ``(gy, gx)`` of the channel mean of ``(K, C, Y, X)`` images, each ``(K, Y, X)``."""
    from scipy import ndimage

    grey = np.asarray(units, np.float64).mean(1)
    gy = np.stack([ndimage.sobel(g, axis=0) for g in grey]) / 8.0
    gx = np.stack([ndimage.sobel(g, axis=1) for g in grey]) / 8.0
    return gy, gx


def _median_direction(gy: np.ndarray, gx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vector of the per-pixel median gradient over the K images (0 where it vanishes)."""
    my, mx = np.median(gy, 0), np.median(gx, 0)
    norm = np.hypot(my, mx)
    norm = np.where(norm > 0, norm, np.inf)
    return my / norm, mx / norm


def shared_gradient(units: np.ndarray, direction: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """How strongly ALL K images share an edge at each pixel.

    The median over the K images of the gradient vectors outlines what they share (Dekel et
    al., CVPR 2017); an edge of one photo's own scene moves the median little, but can still
    leave a median of some size where two photos happen to have edges. The score here is
    stricter: the smallest over the K images of the gradient's component along the median
    gradient's direction, clipped at 0, so every image must show the edge, with the same sign.

    Parameters
    ----------
    units
        ``(K, C, Y, X)`` images in unit range, aligned (the mark at the same place).
    direction
        ``(dy, dx)`` unit vectors to project on instead of the images' own median direction
        (to score other images, e.g. the cleaned ones, along the inputs' mark).

    Returns
    -------
    numpy.ndarray
        ``(Y, X)`` float64, >= 0, in grey levels per pixel of unit range.
    """
    gy, gx = _gradients(units)
    dy, dx = _median_direction(gy, gx) if direction is None else direction
    return np.clip((gy * dy + gx * dx).min(0), 0.0, None)


def shared_edge(units: np.ndarray) -> np.ndarray:
    """Like :func:`shared_gradient`, for marks of any colour: an edge in every image, either sign.

    A coloured mark is lighter than one photo and darker than another, so its edge's sign (and
    which channel shows it) changes from image to image. Per image and channel, the Sobel
    gradient's component along the edge's orientation (the main axis of the gradients'
    structure tensor over the K images and channels, a direction without sign), in absolute
    value; the largest over the channels; the smallest over the K images.
    """
    from scipy import ndimage

    u = np.asarray(units, np.float64)
    gy = np.stack([[ndimage.sobel(ch, axis=0) for ch in img] for img in u]) / 8.0
    gx = np.stack([[ndimage.sobel(ch, axis=1) for ch in img] for img in u]) / 8.0
    jyy, jxx, jxy = (gy * gy).sum((0, 1)), (gx * gx).sum((0, 1)), (gx * gy).sum((0, 1))
    angle = 0.5 * np.arctan2(2 * jxy, jxx - jyy)
    along = np.abs(gy * np.sin(angle) + gx * np.cos(angle))  # (K, C, Y, X)
    return along.max(1).min(0)


def estimate_support(
    units: np.ndarray,
    low: float = 0.2,
    margin: int = 6,
    relative: float = 0.25,
    chance_factor: float = 1.5,
    min_outline: int = 16,
    min_cluster: float = 0.1,
    any_colour: bool = False,
    _unsigned: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Where a watermark shared by K >= 2 aligned images lies, from their shared gradients.

    1. :func:`shared_gradient` of the images, and of the same images shifted against each other
       by different amounts (what the score reaches by chance, without a shared mark).
    2. The mark's outline: a hysteresis threshold, strong pixels above ``max(chance_factor x the
       chance score's 99.9th percentile, relative x the score's 99.9th percentile)``, grown into
       connected pixels above ``low`` times that.
    3. Outline pixels in clusters (4-pixel reach) with at least ``min_outline`` pixels and
       ``min_cluster`` times the largest cluster's count are kept; the rest is chance.
    4. The support: the kept outline closed (3 px), its holes filled (the inside of letters
       and logos), widened by ``margin`` pixels.

    Parameters
    ----------
    units
        ``(K, C, Y, X)`` aligned images in unit range.
    low, margin, relative, chance_factor, min_outline, min_cluster
        As above.
    any_colour
        Also find the outline of a mark lighter than some photos and darker than others (a
        colour, or a badge): the union of the outline above and the one :func:`shared_edge`
        gives (an edge of either sign in every image), each against its own chance level, when
        the latter is more than 1.5 times larger (else the signed outline alone).

    Returns
    -------
    support, outline
        Boolean ``(Y, X)`` arrays; both all False when the images share no edge beyond chance
        (then nothing should be changed).
    """
    from scipy import ndimage
    from skimage.filters import apply_hysteresis_threshold

    units = np.asarray(units, np.float64)
    k, _, h, w = units.shape
    nothing = np.zeros((h, w), bool)
    if any_colour:  # the signed outline (a light or dark mark), and the unsigned one (any colour)
        args = (low, margin, relative, chance_factor, min_outline, min_cluster)
        signed, unsigned = (
            estimate_support(units, *args)[1],
            estimate_support(units, *args, _unsigned=True)[1],
        )
        # a light (or dark) mark: the signed outline alone (the unsigned one adds chance edges
        # around it: -1.2 dB on the sample logo); a coloured one, which it mostly misses: both
        outline = signed | unsigned if unsigned.sum() > 1.5 * signed.sum() else signed
        if not outline.any():
            return nothing, nothing
        body = ndimage.binary_fill_holes(ndimage.binary_closing(outline, iterations=3) | outline)
        return ndimage.binary_dilation(body, iterations=margin) if margin > 0 else body, outline
    shared = shared_edge if _unsigned else shared_gradient
    score = shared(units)
    shifts = [((i * h) // k + 7 * i, (i * w) // k + 13 * i) for i in range(k)]
    shifted = np.stack([np.roll(u, s, axis=(-2, -1)) for u, s in zip(units, shifts, strict=True)])
    chance = shared(shifted)
    high = max(
        chance_factor * float(np.percentile(chance, 99.9)), relative * float(np.percentile(score, 99.9))
    )
    if not high > 0:
        return nothing, nothing
    outline = apply_hysteresis_threshold(score, low * high, high)
    clusters, n = ndimage.label(ndimage.binary_dilation(outline, iterations=4))
    if n == 0:
        return nothing, nothing
    counts = np.asarray(ndimage.sum(outline, clusters, index=np.arange(1, n + 1)))
    keep = np.zeros(n + 1, bool)
    keep[1:] = (counts >= min_outline) & (counts >= min_cluster * counts.max())
    outline = outline & keep[clusters]
    if not outline.any():
        return nothing, nothing
    body = ndimage.binary_fill_holes(ndimage.binary_closing(outline, iterations=3) | outline)
    if margin > 0:
        body = ndimage.binary_dilation(body, iterations=margin)
    return body, outline


def keep_removals(
    units: np.ndarray, cleaned: np.ndarray, support: np.ndarray, outline: np.ndarray, changed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Keep a cleaned part of the support only where it removed the shared mark; else the input.

    For each connected part of ``support``: if the cleaned images share at least as strong an
    edge along the mark's outline as the inputs did (``|median over the K images of the
    gradient along the inputs' median gradient direction|``, mean over the part's ``outline``
    pixels; an over-correction, the edge reversed, counts too), the part is given back as the
    inputs for all images; otherwise, each image whose own edge along the outline did not
    weaken (``|its gradient along that direction|``, mean over those pixels) gets its input
    back there.

    Parameters
    ----------
    units, cleaned
        ``(K, C, Y, X)`` inputs and cleaned images, unit range, on the common area.
    support, outline
        Boolean ``(Y, X)``, from :func:`estimate_support`.
    changed
        Boolean ``(K, Y, X)`` (or broadcastable): where each cleaned image differs from its input.

    Returns
    -------
    cleaned, changed
        New arrays: the cleaned images with the refused parts reset to the inputs, and where
        they still differ.
    """
    from scipy import ndimage

    units = np.asarray(units)
    out = np.array(cleaned, copy=True)
    changed = np.array(np.broadcast_to(changed, out.shape[:1] + out.shape[2:]), copy=True)
    gy, gx = _gradients(units)
    dy, dx = _median_direction(gy, gx)
    proj_in = gy * dy + gx * dx  # (K, Y, X)
    oy, ox = _gradients(out)
    proj_out = oy * dy + ox * dx
    shared_in = np.abs(np.median(proj_in, 0))
    shared_out = np.abs(np.median(proj_out, 0))
    parts, n = ndimage.label(support)
    for part in range(1, n + 1):
        where = parts == part
        on_outline = where & outline
        if not on_outline.any() or shared_out[on_outline].mean() >= shared_in[on_outline].mean():
            refuse = np.ones(len(out), bool)
        else:
            refuse = np.abs(proj_out[:, on_outline]).mean(1) >= np.abs(proj_in[:, on_outline]).mean(1)
        for k in np.flatnonzero(refuse):
            out[k][:, where] = units[k][:, where]
            changed[k][where] = False
    return out, changed


def fill_area(outline: np.ndarray, support: np.ndarray, close: int = 2, widen: int = 2) -> np.ndarray:
    """The mark's strokes: its ``outline`` closed (``close`` px) and widened (``widen`` px), within ``support``."""
    from scipy import ndimage

    strokes = ndimage.binary_closing(outline, iterations=close) | outline
    if widen > 0:
        strokes = ndimage.binary_dilation(strokes, iterations=widen)
    return strokes & support


def fill_under(units: np.ndarray, area: np.ndarray) -> np.ndarray:
    """Each ``(C, Y, X)`` image of ``units`` filled in over ``area`` by biharmonic inpainting.

    Parameters
    ----------
    units
        ``(K, C, Y, X)`` images in unit range.
    area
        Boolean ``(Y, X)``: the pixels to fill.

    Returns
    -------
    numpy.ndarray
        ``(K, C, Y, X)`` float32 in [0, 1], equal to ``units`` off ``area``.
    """
    from skimage.restoration import inpaint_biharmonic

    units = np.asarray(units, np.float32)
    if not area.any():
        return units.copy()
    filled = [inpaint_biharmonic(np.moveaxis(u, 0, -1), area, channel_axis=-1) for u in units]
    return np.clip(np.stack([np.moveaxis(f, -1, 0) for f in filled]), 0.0, 1.0).astype(np.float32)


def pick_per_part(
    units: np.ndarray,
    candidates: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    support: np.ndarray,
    outline: np.ndarray,
    handicap: list[float] | None = None,
    by: str = "outline",
    choices: list[int] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each connected part of ``support``, the candidate that leaves the least shared outline.

    Each candidate is ``(cleaned, mask, colour)``: ``(K, C, Y, X)`` images, their ``(Y, X)``
    opacity and the mark's ``(C, Y, X)`` colour.
    The score of a candidate on a part is the mean over the part's ``outline`` pixels of
    ``|median over the K images of the gradient along the inputs' median gradient direction|``:
    what is left of the mark's edges, or what an over-correction drew in their place (the
    same edge reversed), times the candidate's ``handicap`` (default 1: a candidate with
    handicap 1.2 must leave under 1 / 1.2 of another's score to be taken). Ties go to the first
    candidate. With ``by="edges"`` the score is instead the mean over the part of
    :func:`edge_energy`: how much edge the K cleaned images have there at all (the matting
    model's prior: the photos' gradients are sparse), which also counts a mark's edges that are
    not in the outline (a dark outline around light letters) and edges an inversion amplified.
    ``choices``, when given, is filled with the index of the candidate taken on each part of
    ``ndimage.label(support)`` in label order (0 on a part without outline pixels).

    Returns
    -------
    cleaned, mask, colour
        The combined images, opacity and colour (copies).
    """
    from scipy import ndimage

    gy, gx = _gradients(units)
    dy, dx = _median_direction(gy, gx)
    scores = []
    for c, _, _ in candidates:
        if by == "edges":
            scores.append(edge_energy(c))
            continue
        cy, cx = _gradients(c)
        scores.append(np.abs(np.median(cy * dy + cx * dx, 0)))
    cleaned = np.array(candidates[0][0], copy=True)
    mask = np.array(candidates[0][1], np.float32, copy=True)
    colour = np.array(candidates[0][2], np.float32, copy=True)
    parts, n = ndimage.label(support)
    for part in range(1, n + 1):
        where = parts == part
        on_outline = where & outline
        if not on_outline.any():
            if choices is not None:
                choices.append(0)
            continue
        on = where if by == "edges" else on_outline
        factors = handicap if handicap is not None else [1.0] * len(scores)
        best = int(np.argmin([f * s[on].mean() for s, f in zip(scores, factors, strict=True)]))
        if choices is not None:
            choices.append(best)
        if best:
            cleaned[:, :, where] = candidates[best][0][:, :, where]
            mask[where] = candidates[best][1][where]
            colour[:, where] = candidates[best][2][:, where]
    return cleaned, mask, colour


def edge_energy(units: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    """Per pixel, how much edge K images have: ``sum over k, c of sqrt(d^2 + eps^2)`` of the forward differences.

    ``units``: ``(K, C, Y, X)``; returns ``(Y, X)`` float64, the rows' and columns' differences
    each counted at the pixel they start from (0 past the last row and column).
    """
    u = np.asarray(units, np.float64)
    out = np.zeros(u.shape[2:])
    out[:-1] += np.sqrt(np.diff(u, axis=-2) ** 2 + eps * eps).sum((0, 1))
    out[:, :-1] += np.sqrt(np.diff(u, axis=-1) ** 2 + eps * eps).sum((0, 1))
    return out


def opaque_area(
    units: np.ndarray, support: np.ndarray, fraction: float = 0.05, min_pixels: int = 9
) -> np.ndarray:
    """Where the K images are all the same colour inside ``support``: an opaque mark hides them.

    Pixels of ``support`` whose spread over the K images (standard deviation, mean over the
    channels) is below ``fraction`` times its median over the whole frame, in connected parts
    of at least ``min_pixels``. Different photos never agree by chance over a patch; under an
    opaque mark they agree exactly, whatever its colour.
    """
    from scipy import ndimage

    spread = np.asarray(units, np.float64).std(0).mean(0)
    level = fraction * float(np.median(spread))
    same = (spread <= level) & support
    parts, n = ndimage.label(same)
    if n == 0:
        return same
    sizes = np.bincount(parts.ravel())[1:]
    keep = np.zeros(n + 1, bool)
    keep[1:] = sizes >= min_pixels
    return keep[parts]


def fit_overlay(
    units: np.ndarray, under: np.ndarray, area: np.ndarray, window: int = 3, min_spread: float = 1e-3
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel opacity and colour of a mark of ANY colours, from the K images and a guess under it.

    With ``I_k = a * w + (1 - a) * y_k`` at a pixel, the deviations from the K images' mean
    satisfy ``I_k - mean(I) = (1 - a) * (y_k - mean(y))`` whatever the mark's colour ``w``: the
    mark scales how much the photos differ. ``1 - a`` is the least-squares slope of the inputs'
    deviations on those of ``under`` (a guess at the ``y_k``, e.g. :func:`fill_under`), over the
    K images, the channels and a ``window`` x ``window`` neighbourhood; ``a * w`` is then
    ``mean(I) - (1 - a) * mean(y)``. Where the guesses hardly differ (spread below
    ``min_spread``) the data cannot tell, and the opacity is 0.

    Returns
    -------
    alpha, colour
        ``(Y, X)`` opacity in [0, 1] (0 off ``area``) and ``(C, Y, X)`` colour in [0, 1]
        (meaningful where ``alpha > 0``).
    """
    from scipy import ndimage

    units = np.asarray(units, np.float64)
    under = np.asarray(under, np.float64)
    di = units - units.mean(0)
    dy = under - under.mean(0)
    num = (di * dy).sum((0, 1))
    den = (dy * dy).sum((0, 1))
    if window > 1:
        num = ndimage.uniform_filter(num, window)
        den = ndimage.uniform_filter(den, window)
    n = units.shape[0] * units.shape[1]
    slope = np.clip(num / np.maximum(den, 1e-12), 0.0, 1.0)
    alpha = np.where(area & (den / n > min_spread**2), 1.0 - slope, 0.0)
    premult = units.mean(0) - slope[None] * under.mean(0)
    colour = np.clip(premult / np.maximum(alpha, 1e-3)[None], 0.0, 1.0)
    return alpha.astype(np.float32), colour.astype(np.float32)


def alignment_evidence(units: np.ndarray) -> float:
    """How much edge K aligned images share beyond chance.

    The sum of :func:`shared_edge` over the outline :func:`estimate_support` finds (0 when it
    finds none). Compared between ways of aligning the same images, the largest is where their
    mark lines up.
    """
    _, outline = estimate_support(units, any_colour=True)
    return float(shared_edge(units)[outline].sum()) if outline.any() else 0.0


def hint_region(
    hint: Any, shapes: list[tuple[int, ...]], common: tuple[int, int], crop: tuple[slice, slice]
) -> np.ndarray | None:
    """The ``(Y, X)`` bool region of a watermark hint on the images' common area (``None``: no hint).

    Parameters
    ----------
    hint
        ``None``, or a 2-D array (or an image-like ``(Y, X, C)`` one, read by
        :func:`~napari_doubledip.core.conversion.mask_plane`) of the first image's size or the
        common size, nonzero where the mark may be.
    shapes, common, crop
        The images' shapes, their common ``(Y, X)`` size and the first image's crop onto it.

    Raises
    ------
    ValueError
        For a hint of another size, with NaN or infinite values, or marking no pixel of the
        common area.
    """
    if hint is None:
        return None
    h = np.asarray(hint)
    if h.ndim == 3 and h.shape[:2] in (shapes[0][:2], common):
        h = mask_plane(h)  # an RGBA box by its alpha; an opaque RGBA image (the demos' PNG) by its RGB
    if h.ndim != 2 or h.shape not in (tuple(shapes[0][:2]), common):
        raise ValueError(
            f"hint has shape {h.shape} but the images are {shapes}; the hint must be 2-D with "
            f"the first image's (Y, X) size {tuple(shapes[0][:2])} or the common size {common}"
        )
    if np.issubdtype(h.dtype, np.floating) and not np.all(np.isfinite(h)):
        raise ValueError("hint contains NaN or infinite values")
    if h.shape != common:
        h = h[crop]
    region = h != 0
    if not region.any():
        raise ValueError(
            "hint marks no pixel (within the images' common area): nonzero = may contain the watermark"
        )
    return region
