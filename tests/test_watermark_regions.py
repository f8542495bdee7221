"""A mark's wide strokes from the attenuation of the photos' differences; the opacity beside an opaque patch."""

from __future__ import annotations

import numpy as np

from napari_doubledip.core.priors.mark_regions import (
    amplified_parts,
    beside_opaque,
    mark_regions,
    region_start,
)
from napari_doubledip.core.priors.matting import shared_colour_matte
from napari_doubledip.core.priors.watermark import opaque_area

from .conftest import watermark_photos as _photos
from .conftest import watermark_units as _units

ORANGE = np.array([1.0, 0.55, 0.0])


def _wide_ring(size=48, opacity=0.5):
    """A ring 8 px wide and a bar 8 px tall: strokes wider than the fill under the outline reaches."""
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - 20, xx - 24)
    alpha = np.where((r > 8) & (r < 16), opacity, 0.0)
    alpha[38:46, 6:42] = opacity
    return alpha.astype(np.float32)


def _outline(alpha):
    """The mark's edges (2 px across, as the shared-edge score finds them) and its support."""
    from scipy import ndimage

    body = alpha > 0
    edges = ndimage.binary_dilation(body) & ~ndimage.binary_erosion(body)
    return ndimage.binary_fill_holes(ndimage.binary_dilation(body, iterations=3)), edges


def _blend(photos, alpha, colour):
    a = alpha[..., None]
    return [((1 - a) * p + a * np.asarray(colour)).astype(np.float32) for p in photos]


def test_mark_regions_tell_the_strokes_inside_from_the_photo_around_them():
    alpha = _wide_ring()
    units = _units(_blend(_photos(), alpha, ORANGE))
    support, outline = _outline(alpha)
    labels, opacity = mark_regions(units, support, outline)
    inside = [a for c, a in opacity.items() if (alpha[labels == c] > 0).mean() > 0.9]
    outside = [a for c, a in opacity.items() if (alpha[labels == c] > 0).mean() < 0.1]
    assert inside, "no region inside the strokes was judged"
    assert all(abs(a - 0.5) < 0.12 for a in inside)
    assert all(a < 0.3 for a in outside)


def test_region_start_gives_the_strokes_their_opacity_and_colour():
    alpha = _wide_ring()
    units = _units(_blend(_photos(), alpha, ORANGE))
    support, outline = _outline(alpha)
    grey = np.full((3, *alpha.shape), 0.5)
    start, colour, wide = region_start(units, support, outline, np.zeros_like(alpha), grey)
    assert wide.any() and (alpha[wide] > 0).all()
    core = (alpha > 0) & (start >= 0.3)
    assert core.sum() > 0.5 * (alpha > 0).sum()  # most of the strokes, from a start of zero
    assert (start[alpha == 0] < 0.3).mean() > 0.95
    np.testing.assert_allclose(np.median(colour[:, core], 1), ORANGE, atol=0.08)
    # and the shared-colour matte goes from there to the mark; from the plain start it stays away
    err = {}
    for name, (a0, c0) in {"regions": (start, colour), "plain": (np.zeros_like(alpha), grey)}.items():
        fitted, _ = shared_colour_matte(units, support, a0, c0, iters=200)
        err[name] = float(np.abs(fitted - alpha)[support].mean())
    assert err["regions"] < 0.05 and err["regions"] < 0.5 * err["plain"]


def test_mark_regions_find_nothing_without_a_mark():
    units = _units(_photos())
    support = np.zeros(units.shape[2:], bool)
    support[10:30, 10:30] = True
    outline = np.zeros_like(support)
    outline[15, 12:28] = True  # a chance line: no region beside it is attenuated
    _, opacity = mark_regions(units, support, outline)
    assert all(a < 0.3 for a in opacity.values())
    start, _, wide = region_start(units, support, outline, np.zeros(support.shape), np.full((3, 48, 48), 0.5))
    assert not wide.any() and not start.any()


def test_beside_opaque_is_zero_beside_a_sharp_patch_and_the_halo_beside_a_soft_one():
    photos = _photos()
    patch = np.zeros((48, 48), np.float32)
    patch[18:30, 12:36] = 1.0
    red = np.array([0.55, 0.05, 0.1])
    units = _units(_blend(photos, patch, red))
    support = np.zeros((48, 48), bool)
    support[12:36, 6:42] = True
    opaque = opaque_area(units, support)
    assert opaque[patch > 0].mean() > 0.9
    from scipy import ndimage

    rim = ndimage.binary_dilation(opaque, iterations=1)
    band, alpha, colour = beside_opaque(units, opaque, rim)
    assert band.any() and not (band & rim).any()
    assert np.median(alpha[band]) < 0.1
    np.testing.assert_allclose(colour[:, band].mean(1), red, atol=0.02)
    # a halo of the patch's colour at 0.4 just outside it (2 px) is found as such
    halo = ndimage.binary_dilation(patch > 0, iterations=3) & ~ndimage.binary_dilation(
        patch > 0, iterations=1
    )
    soft = np.where(halo, 0.4, patch).astype(np.float32)
    units = _units(_blend(photos, soft, red))
    band, alpha, _ = beside_opaque(units, opaque, rim)
    assert abs(float(np.median(alpha[band & halo])) - 0.4) < 0.1


def test_amplified_parts_refuses_a_part_that_was_no_mark_and_keeps_a_removed_one():
    photos = _photos()
    alpha = _wide_ring()
    units = _units(_blend(photos, alpha, ORANGE))
    clean = _units(photos)
    support = np.zeros(alpha.shape, bool)
    support[2:34, 6:42] = True  # the ring's part
    support[37:47, 2:46] = True  # the bar's part
    mask = alpha.copy()
    # the ring removed exactly; on the bar's part a "removal" where no mark is (the photos' own
    # differences divided by 1 - 0.6 beside the bar)
    cleaned = np.where(alpha[None, None] > 0, clean, units)
    fake = np.zeros_like(alpha)
    fake[37, 2:46] = 0.6
    fake[46, 2:46] = 0.6
    mask = np.where(fake > 0, fake, mask)
    mean = units.mean(0, keepdims=True)
    cleaned = np.where(fake[None, None] > 0, mean + (units - mean) / 0.4, cleaned)
    cleaned[:, :, 38:46] = units[:, :, 38:46]  # the bar itself left alone
    mask[38:46] = 0.0
    refused = amplified_parts(units, cleaned, mask, support)
    assert refused[40, 20] and refused[37, 20]
    assert not refused[4:34].any()  # the ring, removed, is kept
