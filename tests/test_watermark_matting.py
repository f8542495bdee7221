"""The matting model's opacity (gradient-sparsity prior), per-image gains, inversion; the per-part handicap."""

from __future__ import annotations

import numpy as np

from napari_doubledip.core.priors.matting import fit_gains, invert_with_gains, sparse_opacity
from napari_doubledip.core.priors.watermark import estimate_support, fill_area, pick_per_part


def _photos(size=48):
    from napari_doubledip import samples

    return [(0.8 * samples.photo(n, size)).astype(np.float32) for n in ("astronaut", "coffee", "chelsea")]


def _units(images):
    return np.stack([np.moveaxis(np.asarray(i, np.float64), -1, 0) for i in images])


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
