"""The inside of a shared mark's wide strokes, from how it attenuates the K photos' differences.

Under a mark laid over K aligned photos, ``I_k = a * W + (1 - a) * J_k``, the differences
between the images are the photos' differences scaled down, ``I_k - mean(I) = (1 - a) *
(J_k - mean(J))``, whatever the mark's colour ``W``. The mark's outline (where the K images share
an edge) cuts its support into regions; a region inside a wide stroke (a ring, a bar, a badge's
letters) shows the photos' differences weaker than its neighbours across the outline do, by the
factor ``1 - a``. Comparing the difference energy on either side of the outline, region by
region, tells which regions are the mark's and gives each its opacity and colour, with no fill
under the stroke (a fill over a stroke wider than the area filled sees the mark itself and finds
no opacity there). The result starts the shared-colour matte
(:func:`~napari_doubledip.core.priors.matting.shared_colour_matte`) near the mark.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["AMPLIFIED", "amplified_parts", "beside_opaque", "mark_regions", "region_start"]

#: A region is the mark's when the photos' differences in it are attenuated by at least this
#: opacity relative to the regions around it (unmarked regions measured 0.02-0.19 on the colour
#: logo; marked ones 0.46-0.55).
MIN_REGION_OPACITY = 0.3
#: Regions smaller than this many pixels are not judged: their few boundary pairs are noise (at
#: 20 px the text kind's 23-px region by the X, 43 % of it the shadow's, was taken at 0.36 and cost
#: 0.3 dB; the colour logo's ring and bar are 800-1300 px).
MIN_REGION_PIXELS = 50


def _differences(units: np.ndarray) -> np.ndarray:
    """``(Y, X)``: the K images' squared deviations from their mean, summed over images and channels."""
    u = np.asarray(units, np.float64)
    return ((u - u.mean(0)) ** 2).sum((0, 1))


def _pair_energies(
    energy: np.ndarray, labels: np.ndarray, free: np.ndarray, label: int, reach: int, gap: int
) -> dict[int, tuple[float, float, int]]:
    """For one region: ``{neighbour: (energy inside, energy across, pairs)}`` over its boundary pairs.

    Each pixel of the region within ``reach`` of its border is paired with the nearest free pixel
    of another region (at most ``gap + reach`` away: across the outline).
    """
    comp = labels == label
    edge = comp & ~ndimage.binary_erosion(comp, iterations=reach)
    others = free & ~comp
    if not others.any():
        return {}
    dist, idx = ndimage.distance_transform_edt(~others, return_indices=True)
    py, px = np.nonzero(edge & (dist <= gap + reach))
    if py.size == 0:
        return {}
    qy, qx = idx[0][py, px], idx[1][py, px]
    across = labels[qy, qx]
    out = {}
    for neighbour in np.unique(across):
        sel = across == neighbour
        out[int(neighbour)] = (
            float(energy[py[sel], px[sel]].sum()),
            float(energy[qy[sel], qx[sel]].sum()),
            int(sel.sum()),
        )
    return out


def mark_regions(
    units: np.ndarray, support: np.ndarray, outline: np.ndarray, band: int = 1, reach: int = 3
) -> tuple[np.ndarray, dict[int, float]]:
    """The regions between the mark's outline and each one's opacity from the attenuation across it.

    The outline widened by ``band`` pixels cuts the frame into regions (4-connected); the
    background is the one with most pixels off ``support`` (opacity 0). For each pair of
    neighbouring regions across the outline, ``l = log(sqrt(E_in / E_across))`` with ``E`` the
    sum over boundary pairs of the K images' squared deviations from their mean (all channels);
    the regions' ``x = log(1 - a)`` are the weighted least-squares solution of ``x_i - x_j = l``
    (``x`` = 0 on the background; weights: the square root of the pairs' count).

    Parameters
    ----------
    units
        ``(K, C, Y, X)`` aligned images in unit range, K >= 2.
    support, outline
        Boolean ``(Y, X)`` from :func:`~napari_doubledip.core.priors.watermark.estimate_support`.
    band, reach
        How far the outline is widened, and how deep into each region its boundary pairs go.

    Returns
    -------
    labels, opacity
        ``(Y, X)`` int region labels (0 on the widened outline) and ``{label: opacity}`` for the
        regions inside the support of at least :data:`MIN_REGION_PIXELS` pixels (the opacity may
        be negative: a region brighter in its differences than its neighbours is not the mark's).
    """
    u = np.asarray(units, np.float64)
    energy = _differences(u)
    widened = ndimage.binary_dilation(outline, iterations=band) if band > 0 else outline
    free = ~widened
    labels, n = ndimage.label(free)
    if n < 2:
        return labels, {}
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    off = np.bincount(labels[~support].ravel(), minlength=n + 1)
    off[0] = 0
    background = int(np.argmax(off))
    judged = [
        c
        for c in range(1, n + 1)
        if c != background and sizes[c] >= MIN_REGION_PIXELS and support[labels == c].any()
    ]
    if not judged:
        return labels, {}
    index = {c: i for i, c in enumerate(judged)}
    rows, rhs = [], []
    for c in judged:
        for neighbour, (inside, across, count) in _pair_energies(
            energy, labels, free, c, reach, 2 * band + 2
        ).items():
            if inside <= 0 or across <= 0 or (neighbour != background and neighbour not in index):
                continue
            row = np.zeros(len(judged))
            row[index[c]] = 1.0
            if neighbour != background:
                row[index[neighbour]] = -1.0
            weight = np.sqrt(count)
            rows.append(weight * row)
            rhs.append(weight * 0.5 * np.log(inside / across))
    if not rows:
        return labels, {}
    x = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)[0]
    return labels, {c: float(1.0 - np.exp(x[index[c]])) for c in judged}


def region_start(
    units: np.ndarray,
    support: np.ndarray,
    outline: np.ndarray,
    alpha: np.ndarray,
    colour: np.ndarray,
    band: int = 1,
    reach: int = 3,
    rim_px: int = 3,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A start for the shared-colour matte with the mark's wide strokes filled in from :func:`mark_regions`.

    In each region of opacity ``a`` >= :data:`MIN_REGION_OPACITY` (clipped to 0.9) the start is
    ``a`` and the region's colour, ``W = median(I_k(p) - (1 - a) * I_k(q)) / a`` over its
    boundary pairs (``p`` inside, ``q`` the nearest pixel of an unmarked region) and the K images,
    per channel; on the widened outline within 2 px of such a region, the larger of ``alpha`` and
    half the region's opacity, in its colour. Elsewhere ``alpha`` and ``colour`` as given.

    Parameters
    ----------
    units, support, outline
        As for :func:`mark_regions`.
    alpha, colour
        ``(Y, X)`` and ``(C, Y, X)`` the start without regions.
    band, reach
        As for :func:`mark_regions`.

    Returns
    -------
    alpha, colour, wide
        The start (new arrays, colour in [0.02, 0.98] where a region set it) and the boolean
        ``(Y, X)`` regions found to be the mark's (all False: the start as given).
    """
    u = np.asarray(units, np.float64)
    a_out = np.array(alpha, np.float64, copy=True)
    c_out = np.array(np.broadcast_to(colour, (u.shape[1], *support.shape)), np.float64, copy=True)
    labels, opacity = mark_regions(u, support, outline, band, reach)
    marked = {c: a for c, a in opacity.items() if a >= MIN_REGION_OPACITY}
    if not marked:
        return a_out, c_out, np.zeros(support.shape, bool)
    is_marked = np.isin(labels, list(marked))
    unmarked = (labels > 0) & ~is_marked
    dist, idx = ndimage.distance_transform_edt(~unmarked, return_indices=True)
    region_alpha = np.zeros(support.shape)
    region_colour = np.zeros_like(c_out)
    for c, a in marked.items():
        a = float(min(a, 0.9))
        comp = labels == c
        edge = comp & ~ndimage.binary_erosion(comp, iterations=reach)
        py, px = np.nonzero(edge & (dist <= 2 * band + 2 + reach))
        if py.size == 0:
            is_marked[comp] = False
            continue
        qy, qx = idx[0][py, px], idx[1][py, px]
        premult = u[:, :, py, px] - (1 - a) * u[:, :, qy, qx]  # (K, C, pairs)
        w = np.clip(np.median(np.moveaxis(premult, 1, 0).reshape(u.shape[1], -1), 1) / a, 0.02, 0.98)
        region_alpha[comp] = a
        region_colour[:, comp] = w[:, None]
    a_out = np.where(is_marked, region_alpha, a_out)
    c_out = np.where(is_marked[None], region_colour, c_out)
    # on the widened outline beside a marked region (its antialiased, partly covered edge): the
    # opacity that moves the nearest unmarked pixel q to p along the region's colour W,
    # least squares over the K images and channels of I_k(p) - I_k(q) = a * (W - I_k(q))
    near_d, near = ndimage.distance_transform_edt(~is_marked, return_indices=True)
    rim = (labels == 0) & (near_d <= rim_px) & support
    if rim.any():
        py, px = np.nonzero(rim)
        qy, qx = idx[0][py, px], idx[1][py, px]
        w = region_colour[:, near[0][py, px], near[1][py, px]][None]  # (1, C, n)
        step = w - u[:, :, qy, qx]
        fitted = ((u[:, :, py, px] - u[:, :, qy, qx]) * step).sum((0, 1)) / np.maximum(
            (step * step).sum((0, 1)), 1e-6
        )
        top = region_alpha[near[0][py, px], near[1][py, px]]
        a_out[py, px] = np.maximum(a_out[py, px], np.clip(fitted, 0.0, top))
        c_out[:, py, px] = w[0]
    return a_out, c_out, is_marked


def beside_opaque(
    units: np.ndarray, opaque: np.ndarray, rim: np.ndarray, reach: int = 3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The opacity just outside an opaque patch, along the patch's own colour.

    A per-pixel fit over images filled in around an opaque patch finds opacity beside it where
    there is none (the fill, interpolated across a band, differs from the photos: 0.52 at the
    99th percentile off the badge of the benchmark). Here, for each pixel ``p`` within ``reach``
    pixels outside ``rim`` (the patch widened), with ``W`` the K images' mean at the nearest
    patch pixel and ``q`` the nearest pixel beyond the band, ``1 - a`` is how much the K images'
    differences are attenuated at ``p`` against ``q`` (``sqrt`` of the ratio of their squared
    deviations from the K images' mean, summed over the pixels at the same distance from the same
    patch), in [0, 1]: about 0 beside a patch with a sharp edge, the halo's opacity beside one
    that fades out.

    Parameters
    ----------
    units
        ``(K, C, Y, X)`` aligned images in unit range.
    opaque, rim
        Boolean ``(Y, X)``: the opaque patch
        (:func:`~napari_doubledip.core.priors.watermark.opaque_area`) and the area filled in for it.
    reach
        The band's width in pixels.

    Returns
    -------
    band, alpha, colour
        Boolean ``(Y, X)`` band, ``(Y, X)`` opacity (0 off the band) and ``(C, Y, X)`` colour
        (the patch's, on the band; 0 elsewhere).
    """
    u = np.asarray(units, np.float64)
    alpha = np.zeros(rim.shape)
    colour = np.zeros((u.shape[1], *rim.shape))
    if not opaque.any():
        return np.zeros(rim.shape, bool), alpha, colour
    grown = ndimage.binary_dilation(rim, iterations=reach)
    band = grown & ~rim
    _, inner = ndimage.distance_transform_edt(~opaque, return_indices=True)
    _, outer = ndimage.distance_transform_edt(grown, return_indices=True)
    py, px = np.nonzero(band)
    w = u.mean(0)[:, inner[0][py, px], inner[1][py, px]]
    dev = _differences(u)
    # pooled over each patch's ring of pixels at the same distance from it (a halo fades with
    # the distance, not along the edge; per pixel, on textured photos, a fit reached 0.15-0.7
    # beside a sharp edge), from the attenuation of the photos' differences (unbiased, where a
    # regression of p on q is pulled by how little the photo at q predicts the photo at p)
    patches, _ = ndimage.label(opaque)
    patch = patches[inner[0][py, px], inner[1][py, px]]
    ring = np.rint(ndimage.distance_transform_edt(~rim)[py, px]).astype(int)
    key = patch * (reach + 2) + ring
    here = np.bincount(key, weights=dev[py, px])
    there = np.bincount(key, weights=dev[outer[0][py, px], outer[1][py, px]])
    kept = np.sqrt(here[key] / np.maximum(there[key], 1e-12))
    alpha[py, px] = np.clip(1.0 - kept, 0.0, 1.0)
    colour[:, py, px] = w
    return band, alpha, colour


#: A part is given back when its cleaned photos differ from each other more than this many times
#: as much (mean squared deviation from the K images' mean) as the inputs around it: measured on
#: parts that helped 0.74-1.53 (text, colour logo, badge, sample logo at 30 steps, text stamp at
#: K = 2), on parts that harmed 2.40-3.65 (the colour logo stamped by a corner, K = 2 and 3).
AMPLIFIED = 2.0


def amplified_parts(
    units: np.ndarray, cleaned: np.ndarray, mask: np.ndarray, support: np.ndarray, reach: int = 4
) -> np.ndarray:
    """The parts of ``support`` where the cleaned photos differ far more than the photos around them.

    Removing a mark divides the K photos' differences by ``1 - a`` where the mark was, so they
    come back to what the photos around show; where no mark was (the photos' own edges, shared by
    chance: two photos share many), the same division amplifies them. For each connected part of
    ``support``, over the pixels it claims (``mask`` > 0.1), the mean of the cleaned images'
    squared deviations from their mean is compared with the inputs' over a ring ``reach`` pixels
    wide around them: above :data:`AMPLIFIED` times, the part is refused.

    Parameters
    ----------
    units, cleaned
        ``(K, C, Y, X)`` inputs and cleaned images, unit range.
    mask
        ``(Y, X)`` the opacity found.
    support
        Boolean ``(Y, X)``.
    reach
        The ring's width in pixels.

    Returns
    -------
    numpy.ndarray
        Boolean ``(Y, X)``: the refused parts (all False: none).
    """
    before, after = _differences(units), _differences(cleaned)
    refused = np.zeros(support.shape, bool)
    parts, n = ndimage.label(support)
    for part in range(1, n + 1):
        where = parts == part
        claimed = where & (mask > 0.1)
        if not claimed.any():
            continue
        ring = ndimage.binary_dilation(claimed, iterations=reach) & ~claimed
        if ring.any() and after[claimed].mean() > AMPLIFIED * before[ring].mean():
            refused |= where
    return refused
