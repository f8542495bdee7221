"""Watermark removal: shapes, dtypes, alignment, mask range, hints, errors, inputs untouched."""

from __future__ import annotations

import numpy as np
import pytest

import napari_doubledip as dd
from napari_doubledip.core.conversion import centre_crops
from napari_doubledip.core.postprocess import invert_overlay, keep_watermark_parts, refine_opacity
from napari_doubledip.core.priors.watermark import (
    estimate_support,
    fill_under,
    fit_overlay,
    keep_removals,
    opaque_area,
    pick_per_part,
)
from napari_doubledip.core.tasks.watermark import WatermarkTask

FAST = {
    "device": "cpu",
    "threads": 1,
    "net": {"preset": "default", "channels_down": [8] * 5, "channels_up": [8] * 5},
}


def _logo(shape):
    alpha = np.zeros(shape, np.float32)
    h, w = shape
    alpha[h // 2 - 6 : h // 2 + 6, w // 4 : 3 * w // 4] = 0.5
    return alpha


def _watermarked(photo48):
    photos = [photo48, photo48[::-1], photo48[:, ::-1]]
    alpha = _logo(photo48.shape[:2])[..., None]
    return [((1 - alpha) * p + alpha).astype(np.float32) for p in photos], alpha[..., 0]


def test_three_images_outputs(photo48):
    images, _ = _watermarked(photo48)
    copies = [i.copy() for i in images]
    result = dd.remove_watermark(images, steps=5, **FAST)
    assert len(result.images) == 3
    for out, image in zip(result.images, images, strict=True):
        assert out.shape == image.shape and out.dtype == image.dtype
    assert result.mask.shape == (48, 48) and result.mask.dtype == np.float32
    assert result.mask.min() >= 0 and result.mask.max() <= 1
    assert result.watermark.shape == (48, 48, 3)
    assert result.colour.tolist() == [1.0, 1.0, 1.0]
    assert set(result.history) >= {"data", "exclusion"}
    for i, c in zip(images, copies, strict=True):
        np.testing.assert_array_equal(i, c)


def test_images_of_different_sizes_come_back_at_their_own_size(photo48):
    images, _ = _watermarked(photo48)
    images = [
        (images[0] * 255).astype(np.uint8),
        np.pad((images[1] * 255).astype(np.uint8), ((1, 2), (0, 1), (0, 0)), mode="edge"),
        (images[2][1:-2] * 255).astype(np.uint8),
    ]
    result = dd.remove_watermark(images, steps=3, **FAST)
    assert [r.shape for r in result.images] == [i.shape for i in images]
    assert all(r.dtype == np.uint8 for r in result.images)
    assert result.mask.shape == (45, 48)
    assert result.offsets == [(1, 0), (3, 0), (0, 0)]
    # the mark to look at: RGBA on the first image's frame, alpha = the mask where it lies
    assert result.mark.shape == (48, 48, 4) and result.mark.dtype == np.float32
    np.testing.assert_array_equal(result.mark[1:46, :, 3], result.mask)
    assert not result.mark[[0, 46, 47], :, 3].any()
    assert result.mark.min() >= 0 and result.mark.max() <= 1
    # outside the common centred area the image is the input's own
    np.testing.assert_array_equal(result.images[1][:3], images[1][:3])
    np.testing.assert_array_equal(result.images[1][-3:], images[1][-3:])


def test_stream_keys(photo48):
    images, _ = _watermarked(photo48)
    snaps = list(dd.remove_watermark_stream(images[:2], steps=2, min_interval=0, **FAST))
    assert set(snaps[-1].outputs) == {"clean_0", "clean_1", "watermark", "mask", "mark"}
    assert snaps[-1].outputs["mask"].shape == (48, 48)


def test_single_image_with_hint_keeps_mask_inside_hint(photo48):
    images, alpha = _watermarked(photo48)
    hint = np.zeros((48, 48), np.uint8)
    hint[14:34, 8:40] = 1
    result = dd.remove_watermark(images[0], hint=hint, steps=4, watermark="learn", **FAST)
    assert result.images[0].shape == images[0].shape
    assert np.all(result.mask[hint == 0] == 0)
    assert result.mask[hint == 1].max() > 0
    assert np.all((result.colour > 0) & (result.colour < 1))
    # outside the hint the image comes back exactly as given
    np.testing.assert_allclose(result.images[0][hint == 0], images[0][hint == 0], atol=1e-6)


def test_rgba_box_hints_read_from_alpha_or_from_colour(photo48):
    """An RGBA hint marks its box with alpha, or (opaque, white on black) with its colour."""
    images, _ = _watermarked(photo48)
    box = np.zeros((48, 48), bool)
    box[14:34, 8:40] = True
    opaque = np.zeros((48, 48, 4), np.uint8)
    opaque[..., 3] = 255
    opaque[box, :3] = 255
    see_through = np.zeros((48, 48, 4), np.uint8)
    see_through[box, 3] = 255
    for hint in (opaque, see_through):
        task = WatermarkTask([images[0]], hint=hint)
        np.testing.assert_array_equal(task.hint, box)


def test_inversion_recovers_photo_given_true_alpha(photo48):
    images, alpha = _watermarked(photo48)
    task = WatermarkTask(images)
    clean = np.zeros((3, 3, 48, 48), np.float32)
    out = invert_overlay(task.units, clean, alpha, np.ones(3), task.opts.opaque_from, task.opts.opaque_full)
    np.testing.assert_allclose(np.moveaxis(out[0], 0, -1), photo48, atol=1e-5)


def test_errors(photo48):
    images, _ = _watermarked(photo48)
    with pytest.raises(ValueError, match="K >= 2 images"):
        WatermarkTask([images[0]])
    with pytest.raises(ValueError, match="K >= 2 images"):
        WatermarkTask(images[0])
    with pytest.raises(ValueError, match="hint has shape"):
        WatermarkTask(images, hint=np.ones((10, 10)))
    with pytest.raises(ValueError, match="marks no pixel"):
        WatermarkTask(images[0], hint=np.zeros((48, 48)))
    with pytest.raises(ValueError, match="cannot be aligned"):
        WatermarkTask([images[0], np.pad(images[1], ((20, 20), (0, 0), (0, 0)))])
    with pytest.raises(ValueError, match="channels"):
        WatermarkTask([images[0], images[1][..., 0]])
    with pytest.raises(ValueError, match="watermark must be"):
        WatermarkTask(images, watermark="purple")


def test_centre_crops():
    common, crops = centre_crops([(500, 333), (500, 334, 3), (500, 322)])
    assert common == (500, 322)
    assert crops[1] == (slice(0, 500), slice(6, 328))


def test_keep_watermark_parts_zeroes_false_opacity_off_the_mark():
    rng = np.random.default_rng(0)
    mask = (rng.random((64, 64)) * 0.2).astype(np.float32)  # false opacity everywhere
    mask[20:40, 10:50] = 0.5  # the watermark
    mask[5, 5] = mask[60, 60] = 0.45  # isolated specks above the threshold
    before = mask.copy()
    cleaned = keep_watermark_parts(mask)
    np.testing.assert_array_equal(mask, before)
    assert np.all(cleaned[20:40, 10:50] == 0.5)
    off = np.ones_like(mask, bool)
    off[20:40, 10:50] = False
    assert np.all(cleaned[off] == 0)
    flat = np.full((16, 16), 0.3, np.float32)
    np.testing.assert_array_equal(keep_watermark_parts(flat), flat)


def test_clean_mask_option_recorded_and_validated(photo48):
    images = [photo48, photo48[:, ::-1]]
    with pytest.raises(ValueError, match="min_part"):
        WatermarkTask(images, min_part=1.5)
    assert WatermarkTask(images).options()["clean_mask"] is True
    assert WatermarkTask(images).options()["refine_alpha"] is True


def test_refine_opacity_recovers_sharp_alpha_from_blurred_mask():
    from scipy import ndimage

    rng = np.random.default_rng(1)
    clean = 0.5 * rng.random((3, 3, 32, 32))  # K images, C channels; all darker than the mark
    alpha = np.zeros((32, 32))
    alpha[8:24, 10:22] = 0.5
    colour = np.ones(3)
    images = alpha * colour[None, :, None, None] + (1 - alpha) * clean
    blurred = ndimage.gaussian_filter(alpha, 2.0)  # what a smooth mask generator draws
    support = np.where(blurred > 0.05, blurred, 0.0)
    before = support.copy()
    refined = refine_opacity(images, clean, support, colour)
    np.testing.assert_array_equal(support, before)
    assert refined.dtype == np.float32 and refined.shape == (32, 32)
    assert np.all(refined[support == 0] == 0)
    inside = support > 0
    err_before = np.abs(support - alpha)[inside].mean()
    err_after = np.abs(refined - alpha)[inside].mean()
    assert err_after < err_before / 2, (err_after, err_before)
    # the images differ clearly from the watermark colour: the fit is close everywhere (the ridge
    # shrinks it a little towards 0)
    assert np.abs(refined - alpha)[inside].max() < 0.08


def test_refine_opacity_keeps_near_opaque_marks_and_still_shrinks_unsure_pixels():
    """Nearly opaque: no bias towards 0 (the inversion would leave the mark). Unsure: shrunk."""
    rng = np.random.default_rng(2)
    clean = 0.5 * rng.random((3, 3, 32, 32))
    alpha = np.zeros((32, 32))
    alpha[8:24, 4:14] = 0.85
    colour = np.ones(3)
    # right half: no mark, but the images are nearly the mark's colour (the data cannot tell),
    # and the generators' outputs are a little off (noise)
    clean[:, :, :, 16:] = 0.97
    images = alpha * colour[None, :, None, None] + (1 - alpha) * clean
    generated = clean + np.where(np.arange(32) >= 16, 1.0, 0.0) * rng.normal(0, 0.02, clean.shape)
    mask = np.where(alpha > 0, 0.85, 0.0)
    mask[8:24, 18:30] = 0.2  # a false faint opacity the generator drew where nothing is
    refined = refine_opacity(images, generated, mask, colour)
    unridged = refine_opacity(images, generated, mask, colour, ridge=0.0)
    opaque = alpha > 0
    assert np.abs(refined[opaque] - 0.85).max() < 0.01
    false = mask == 0.2
    assert refined[false].mean() < 0.5 * unridged[false].mean(), (
        refined[false].mean(),
        unridged[false].mean(),
    )


# -- the mark's support, from what the K images share -------------------------------------------


def _three_photos(size=64):
    from napari_doubledip import samples

    # darkened a little, so that the white mark shows on every pixel of every photo
    return [(0.8 * samples.photo(n, size)).astype(np.float32) for n in ("astronaut", "coffee", "chelsea")]


def _marked(photos, opacity=0.5):
    alpha = np.zeros(photos[0].shape[:2], np.float32)
    alpha[26:38, 14:50] = opacity  # a bar of white, shared by all
    a = alpha[..., None]
    return [((1 - a) * p + a).astype(np.float32) for p in photos], alpha


def _units(images):
    return np.stack([np.moveaxis(np.asarray(i, np.float64), -1, 0) for i in images])


def test_estimate_support_covers_the_shared_mark_and_nothing_far_from_it():
    images, alpha = _marked(_three_photos())
    support, outline = estimate_support(_units(images))
    assert support[alpha > 0].mean() > 0.95
    assert outline.any() and np.all(support[outline])
    far = np.ones_like(support)
    far[18:46, 6:58] = False  # the mark widened by 8 px
    assert not support[far].any()


def test_estimate_support_is_empty_when_the_images_share_no_mark():
    support, outline = estimate_support(_units(_three_photos()))
    assert not support.any() and not outline.any()


def test_pixels_outside_the_support_come_back_bit_identical():
    images, alpha = _marked(_three_photos())
    images = [(i * 255).round().astype(np.uint8) for i in images]
    copies = [i.copy() for i in images]
    support = WatermarkTask(images).support
    assert support[alpha > 0].all() and not support.all()
    result = dd.remove_watermark(images, steps=4, **FAST)
    assert np.all(result.mask[~support] == 0)
    for out, image, copy in zip(result.images, images, copies, strict=True):
        np.testing.assert_array_equal(out[~support], image[~support])
        np.testing.assert_array_equal(image, copy)
    # and inside, the mark is (partly) undone: the bar is darker than it was
    assert np.mean([o[alpha > 0].mean() < i[alpha > 0].mean() for o, i in zip(result.images, images)]) == 1


def test_images_that_share_no_mark_come_back_unchanged():
    photos = _three_photos()
    result = dd.remove_watermark(photos, steps=3, **FAST)
    assert np.all(result.mask == 0)
    for out, photo in zip(result.images, photos, strict=True):
        np.testing.assert_array_equal(out, photo)


def test_support_off_lets_the_mask_go_anywhere():
    images, _ = _marked(_three_photos())
    task = WatermarkTask(images, support=False)
    assert task.support is None and task.options()["support"] is False
    with pytest.raises(ValueError, match="support_margin"):
        WatermarkTask(images, support_margin=-1)


def test_keep_removals_refuses_parts_that_keep_or_reverse_the_mark():
    photos = _three_photos()
    images, alpha = _marked(photos)
    units, clean = _units(images), _units(photos)
    support, outline = estimate_support(units)
    changed = np.broadcast_to(support, (3, *support.shape))
    # the true clean images: kept
    kept, still = keep_removals(units, clean, support, outline, changed)
    np.testing.assert_array_equal(kept, clean)
    assert still[:, support].all()
    # the mark laid on twice, and the mark over-corrected (its edges reversed, 1.2 times as
    # strong): the inputs come back there
    a = alpha[None, None]
    for worse in ((1 - a) * units + a, clean - 1.2 * (units - clean)):
        back, none = keep_removals(units, worse, support, outline, changed)
        np.testing.assert_array_equal(back, units)
        assert not none.any()


def test_pick_per_part_takes_the_candidate_that_leaves_less_of_the_mark():
    photos = _three_photos()
    images, alpha = _marked(photos)
    units, clean = _units(images), _units(photos)
    support, outline = estimate_support(units)
    m_true, m_none = alpha, np.zeros_like(alpha)
    white, black = np.ones((3, *alpha.shape), np.float32), np.zeros((3, *alpha.shape), np.float32)
    for first, second in (
        ((units, m_none, black), (clean, m_true, white)),
        ((clean, m_true, white), (units, m_none, black)),
    ):
        cleaned, mask, colour = pick_per_part(units, [first, second], support, outline)
        np.testing.assert_array_equal(cleaned, clean)
        np.testing.assert_array_equal(mask, m_true)
        np.testing.assert_array_equal(colour[:, support], 1.0)


def test_fill_under_changes_only_the_area():
    images, alpha = _marked(_three_photos())
    units = _units(images)
    area = alpha > 0
    filled = fill_under(units, area)
    assert filled.shape == units.shape and filled.dtype == np.float32
    np.testing.assert_array_equal(filled[:, :, ~area], units[:, :, ~area].astype(np.float32))
    assert np.abs(filled[:, :, area] - units[:, :, area]).mean() > 0.05  # the white bar is gone


def _stamped_by_corner(anchor="bottom-right", sizes=((60, 64), (64, 62), (62, 66))):
    """Three photos of slightly different sizes, a white bar stamped 4 px from one corner."""
    photos = _three_photos(size=72)
    images, where = [], []
    for p, (h, w) in zip(photos, sizes, strict=True):
        img = p[:h, :w].copy()
        top = 4 if anchor.startswith("top") else h - 16
        left = 4 if anchor.endswith("left") else w - 40
        img[top : top + 12, left : left + 36] = 0.5 * img[top : top + 12, left : left + 36] + 0.5
        images.append(img)
        where.append((top, left))
    return images, where


def test_centre_crops_by_a_corner():
    common, crops = centre_crops([(60, 64), (64, 62)], anchor="bottom-right")
    assert common == (60, 62)
    assert crops == [(slice(0, 60), slice(2, 64)), (slice(4, 64), slice(0, 62))]
    _, crops = centre_crops([(60, 64), (64, 62)], anchor="top-left")
    assert crops == [(slice(0, 60), slice(0, 62))] * 2
    with pytest.raises(ValueError, match="anchor"):
        centre_crops([(60, 64)], anchor="middle")


@pytest.mark.parametrize("anchor", ["bottom-right", "top-left"])
def test_align_auto_finds_the_corner_a_stamp_is_placed_by(anchor):
    images, where = _stamped_by_corner(anchor)
    task = WatermarkTask(images)  # the support and the alignment are set up here
    assert task.align == anchor
    (ys, xs), (top, left) = task.crops[0], where[0]
    bar = np.zeros(task.common, bool)
    bar[top - ys.start : top - ys.start + 12, left - xs.start : left - xs.start + 36] = True
    assert task.support[bar].mean() > 0.9  # the stamp lines up in the common area, and is found
    # aligned by the centres, the stamps do not line up: less (here no) shared edge
    centred = WatermarkTask(images, align="centre")
    assert centred.align == "centre" and centred.support[bar].mean() < 0.5


def test_align_is_an_option_of_every_face():
    images, _ = _stamped_by_corner()
    result = dd.remove_watermark(images, steps=2, align="bottom-right", **FAST)
    assert result.params["aligned_by"] == "bottom-right" and result.params["align"] == "bottom-right"
    assert result.offsets == [(0, 2), (4, 0), (2, 4)]
    with pytest.raises(ValueError, match="align"):
        dd.remove_watermark(images, steps=2, align="middle", **FAST)


def _coloured(photos, opacity=0.5, colour=(0.9, 0.5, 0.0)):
    """An orange bar: lighter than some photos' pixels, darker than others'."""
    alpha = np.zeros(photos[0].shape[:2], np.float32)
    alpha[26:38, 14:50] = opacity
    a = alpha[..., None]
    return [((1 - a) * p + a * np.float32(colour)).astype(np.float32) for p in photos], alpha


def test_fit_overlay_recovers_opacity_and_colour_of_any_colour():
    photos = _three_photos()
    images, alpha = _coloured(photos)
    units, clean = _units(images), _units(photos)
    area = np.zeros_like(alpha, bool)
    area[20:44, 8:56] = True
    a, colour = fit_overlay(units, clean, area, window=1)  # given what is under the mark: exact
    np.testing.assert_allclose(a, np.where(area, alpha, 0), atol=1e-4)
    np.testing.assert_allclose(
        colour[:, alpha > 0], np.array([[0.9], [0.5], [0.0]]) + 0 * alpha[alpha > 0], atol=1e-3
    )
    a, _ = fit_overlay(units, fill_under(units, alpha > 0), area)  # from a fill-in: near
    assert abs(float(np.median(a[alpha > 0])) - 0.5) < 0.1 and float(np.median(a[area & (alpha == 0)])) < 0.05


def test_support_of_a_coloured_mark_and_its_opaque_patch():
    photos = _three_photos()
    images, alpha = _coloured(photos, opacity=1.0)  # an opaque orange badge
    units = _units(images)
    support, _ = estimate_support(units, any_colour=True)
    assert support[alpha > 0].mean() > 0.95
    opaque = opaque_area(units, support)
    assert opaque[28:36, 16:48].all() and not opaque[alpha == 0].any()
    result = dd.remove_watermark(images, steps=2, **FAST)  # filled in where all photos agree
    assert result.params["start_opacity"] == pytest.approx(0.9)
    before = np.mean([np.abs(i - p)[26:38, 14:50].mean() for i, p in zip(images, photos, strict=True)])
    after = np.mean([np.abs(r - p)[26:38, 14:50].mean() for r, p in zip(result.images, photos, strict=True)])
    assert after < 0.5 * before


def test_a_photo_given_twice_is_refused_and_left_untouched():
    """A photo given twice shares everything with itself: its whole picture would be taken for the mark."""
    from skimage import data

    a = data.astronaut()[:64, :64].copy()
    b = data.coffee()[:64, :64].copy()
    copies = [a.copy(), a.copy(), b.copy()]
    with pytest.raises(ValueError, match=r"images\[0\] and images\[1\] are the same photo"):
        dd.remove_watermark(copies, steps=1)
    for given, kept in zip(copies, [a, a, b], strict=True):
        np.testing.assert_array_equal(given, kept)
