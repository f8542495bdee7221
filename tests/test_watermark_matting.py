"""The matting model's opacity (gradient-sparsity prior), per-image gains, inversion; the per-part handicap."""

from __future__ import annotations

import numpy as np

from napari_doubledip.core.priors.matting import fit_gains, invert_with_gains, sparse_opacity
from napari_doubledip.core.priors.watermark import estimate_support, fill_area, pick_per_part

from .conftest import watermark_photos as _photos
from .conftest import watermark_units as _units


def _ring_mark(size=48, opacity=0.4):
    """A white ring and a bar: thin strokes of one opacity, as a stock mark's lettering."""
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - 16, xx - 14)
    alpha = np.where((r > 5) & (r < 8), opacity, 0.0)
    alpha[30:34, 8:42] = opacity
    return alpha.astype(np.float32)


def _blend(photos, alpha, gains=None):
    """``I = g a + (1 - g a) J`` per image and channel (white mark), ``gains`` ``(K, C)`` or 1."""
    out = []
    for k, p in enumerate(photos):
        g = np.ones(p.shape[-1]) if gains is None else np.asarray(gains[k])
        a = np.clip(alpha[..., None] * g, 0, 1)
        out.append(((1 - a) * p + a).astype(np.float32))
    return out


def test_sparse_opacity_finds_the_shared_opacity_from_a_rough_start():
    photos = _photos()
    alpha = _ring_mark()
    units = _units(_blend(photos, alpha))
    support, outline = estimate_support(units)
    assert support[alpha > 0].all()
    area = fill_area(outline, support)
    for level in (0.25, 0.6):  # a constant start over the strokes, too low and too high
        start = level * area
        fitted = sparse_opacity(units, support, start, np.ones(3))
        assert not fitted[~support].any()
        err = np.abs(fitted - alpha)[support].mean()
        assert err < 0.05 and err < 0.4 * np.abs(start - alpha)[support].mean()
        assert abs(float(np.median(fitted[alpha > 0])) - 0.4) < 0.05


def test_fit_gains_recovers_a_different_blend_per_image_and_channel():
    photos = _photos()
    alpha = _ring_mark()
    gains = np.array([[1.2, 1.0, 0.8], [0.8, 1.0, 1.2], [1.0, 1.0, 1.0]])
    units = _units(_blend(photos, alpha, gains))
    fitted = fit_gains(units, alpha, np.ones(3))
    np.testing.assert_allclose(fitted, gains, atol=0.061)
    np.testing.assert_allclose(fit_gains(_units(_blend(photos, alpha)), alpha, np.ones(3)), 1.0, atol=0.021)


def test_invert_with_gains_gives_back_the_photos_and_the_guess_where_opaque():
    photos = _photos()
    alpha = _ring_mark()
    gains = np.array([[1.2, 1.0, 0.8], [0.8, 1.0, 1.2], [1.0, 1.0, 1.0]])
    units, clean = _units(_blend(photos, alpha, gains)), _units(photos)
    back = invert_with_gains(units, alpha, gains, np.ones(3), np.zeros_like(units), 0.75, 0.95)
    np.testing.assert_allclose(back, clean, atol=1e-5)
    opaque = np.where(alpha > 0, 0.95, 0.0).astype(np.float32)
    back = invert_with_gains(units, opaque, np.ones((3, 3)), np.ones(3), clean, 0.75, 0.95)
    np.testing.assert_allclose(back[:, :, opaque > 0], clean[:, :, opaque > 0], atol=1e-6)
    np.testing.assert_allclose(back[:, :, opaque == 0], units[:, :, opaque == 0], atol=1e-6)


def test_pick_per_part_handicap_keeps_the_earlier_candidate_unless_the_later_clearly_wins():
    photos = _photos()
    alpha = _ring_mark()
    units, clean = _units(_blend(photos, alpha)), _units(photos)
    support, outline = estimate_support(units)
    flat = np.ones((3, *alpha.shape), np.float32)
    near = clean + 0.3 * (units - clean)  # 30% of the mark left
    nearer = clean + 0.25 * (units - clean)  # 25% left: better, but not by much
    cands = [(near, alpha, flat), (nearer, alpha, flat)]
    np.testing.assert_array_equal(pick_per_part(units, cands, support, outline)[0], nearer)
    np.testing.assert_array_equal(pick_per_part(units, cands, support, outline, handicap=[1.0, 1.5])[0], near)
    cands = [(near, alpha, flat), (clean, alpha, flat)]  # the later one clearly wins
    np.testing.assert_array_equal(
        pick_per_part(units, cands, support, outline, handicap=[1.0, 1.5])[0], clean
    )


def test_the_matte_is_a_candidate_only_when_the_photos_take_the_mark_differently():
    from napari_doubledip.core.postprocess import refine_opacity
    from napari_doubledip.core.tasks.watermark import WatermarkTask

    photos = _photos()
    alpha = _ring_mark()
    gains = np.array([[1.3, 1.0, 0.7], [0.7, 1.0, 1.3], [1.0, 1.0, 1.0]])
    made = []
    for images in (_blend(photos, alpha), _blend(photos, alpha, gains)):
        task = WatermarkTask(images)
        task._estimate_support()  # on the run's thread in a run (setup), not in the constructor
        start = refine_opacity(task.units, task.fill, task.fill_area.astype(np.float32), np.ones(3))
        made.append(task._matte(start, task.fill))
    assert made[0] is None  # one blend for all photos: the shared-opacity candidates model it
    assert made[1] is not None
    cleaned, fitted, _ = made[1]
    clean = _units(photos)
    on = alpha > 0
    assert (
        np.abs(cleaned - clean)[:, :, on].mean()
        < 0.3 * np.abs(_units(_blend(photos, alpha, gains)) - clean)[:, :, on].mean()
    )


RIM = 1


def _text_like_mark(size=48):
    """White strokes at 0.45 with a dark outline at 0.25 around them: the usual stock lettering."""
    from scipy import ndimage

    core = _ring_mark(size) > 0
    rim = ndimage.binary_dilation(core, iterations=RIM) & ~core
    alpha = np.where(core, 0.45, np.where(rim, 0.25, 0.0)).astype(np.float32)
    colour = np.where(core, 1.0, 0.0)[None].repeat(3, 0).astype(np.float32)
    return alpha, colour


def _overlay(photos, alpha, colour):
    return [
        (alpha[..., None] * np.moveaxis(colour, 0, -1) + (1 - alpha[..., None]) * p).astype(np.float32)
        for p in photos
    ]


def test_shared_colour_matte_finds_a_dark_outline_the_white_model_leaves():
    from napari_doubledip.core.postprocess import refine_opacity
    from napari_doubledip.core.priors.matting import shared_colour_matte
    from napari_doubledip.core.priors.watermark import fill_under

    photos = _photos()
    alpha, colour = _text_like_mark()
    units, clean = _units(_overlay(photos, alpha, colour)), _units(photos)
    support, outline = estimate_support(units, any_colour=True)
    assert support[alpha > 0].all()
    area = fill_area(outline, support)
    start = refine_opacity(units, fill_under(units, area), area.astype(np.float32), np.ones(3))
    white = sparse_opacity(units, support, start, np.ones(3))
    fitted, found = shared_colour_matte(units, support, start, np.full(3, 0.5))
    assert not fitted[~support].any()
    rim = (alpha > 0.2) & (alpha < 0.3)
    assert np.median(white[rim]) < 0.05  # the white model gives the dark outline no opacity
    assert abs(float(np.median(fitted[rim])) - 0.25) < 0.08  # the shared colour finds it
    assert float(np.median(found[:, rim])) < 0.3  # dark
    back_white = (units - white) / (1 - white)
    back = (units - fitted * found) / (1 - fitted)
    on = alpha > 0
    err, err_white = np.abs(back - clean)[:, :, on].mean(), np.abs(back_white - clean)[:, :, on].mean()
    assert err < 0.6 * err_white


def test_pick_per_part_by_edges_counts_edges_off_the_outline():
    photos = _photos()
    alpha, colour = _text_like_mark()
    units, clean = _units(_overlay(photos, alpha, colour)), _units(photos)
    support, outline = estimate_support(units)
    flat = np.ones((3, *alpha.shape), np.float32)
    rng = np.random.default_rng(0)
    off = support & ~outline
    # the mark gone, but noise drawn inside the support off its outline (an amplified inversion)
    noisy = np.where(off[None, None], clean + rng.normal(0, 0.08, clean.shape), clean)
    faint = clean + 0.15 * (units - clean)  # 15% of the mark left, nothing drawn
    cands = [(noisy, alpha, flat), (faint, alpha, flat)]
    np.testing.assert_array_equal(pick_per_part(units, cands, support, outline)[0], noisy)
    np.testing.assert_array_equal(pick_per_part(units, cands, support, outline, by="edges")[0], faint)


def test_the_shared_colour_matte_replaces_a_data_inversion_only_when_it_leaves_clearly_fewer_edges():
    from napari_doubledip.core.tasks.watermark import WatermarkTask

    photos = _photos()
    alpha = _ring_mark()
    dark = np.zeros((3, *alpha.shape), np.float32)  # a dark mark: the white models find nothing
    images = _overlay(photos, alpha, dark)
    units, clean = _units(images), _units(photos)
    task = WatermarkTask(images)
    task._estimate_support()
    worse = units + 0.3 * (units - clean)  # the generators' drew more of the mark: a data one is taken
    for offered, taken in ((clean, True), (units + 0.1 * (units - clean), False)):
        task._shared_cache = (offered.astype(np.float32), alpha, dark)
        out, mask, _ = task._pick_candidates(worse, np.zeros_like(alpha), np.ones(3, np.float32))
        on = (alpha > 0) & task.support  # where the mark was found
        same = np.isclose(out[:, :, on], offered[:, :, on], atol=1e-6).mean()
        assert same > 0.95 if taken else same < 0.5
