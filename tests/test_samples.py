"""Sample generators: deterministic, in range, with consistent ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from napari_doubledip import samples


def test_noisy_photo_is_noisy_and_deterministic():
    noisy, clean = samples.noisy_photo(size=32)
    again, _ = samples.noisy_photo(size=32)
    np.testing.assert_array_equal(noisy, again)
    assert noisy.shape == clean.shape == (32, 32, 3) and noisy.dtype == np.float32
    assert 0.05 < np.std(noisy - clean) < 0.12 and noisy.min() >= 0 and noisy.max() <= 1


def test_missing_pixels_mask_marks_zeroed_pixels():
    damaged, mask, clean = samples.photo_with_missing_pixels(size=32, fraction=0.5)
    assert mask.dtype == bool and 0.4 < mask.mean() < 0.6
    assert np.all(damaged[mask] == 0)
    np.testing.assert_array_equal(damaged[~mask], clean[~mask])


def test_segmentation_hints_lie_inside_their_regions():
    image, true_mask, hints = samples.segmentation_composite(size=64)
    assert image.shape == (64, 64, 3) and 0.15 < true_mask.mean() < 0.6
    assert set(np.unique(hints)) == {0, 1, 2}
    assert np.all(true_mask[hints == 1]) and not np.any(true_mask[hints == 2])


def test_mixtures_follow_their_weights():
    images, (a, b) = samples.mixtures(size=32, noise=0.0)
    np.testing.assert_allclose(images[0], np.clip(0.7 * a + 0.3 * b, 0, 1), atol=1e-6)
    np.testing.assert_allclose(images[1], np.clip(0.3 * a + 0.7 * b, 0, 1), atol=1e-6)


def test_watermark_is_shared_and_invertible():
    images, alpha, clean = samples.watermarked_photos(size=64, alpha=0.5)
    assert len(images) == 3 and alpha.max() == pytest.approx(0.5) and 0.03 < (alpha > 0).mean() < 0.4
    for img, c in zip(images, clean):
        recovered = (img - alpha[..., None]) / (1 - alpha[..., None])
        np.testing.assert_allclose(recovered, c, atol=1e-5)


def test_haze_model_holds():
    hazy, clean, t, a = samples.hazy_photo(size=32)
    assert t.shape == (32, 32) and 0 < t.min() < t.max() <= 1
    assert t[0].mean() < t[-1].mean()  # farther (more haze) towards the top
    np.testing.assert_allclose(hazy, np.clip(t[..., None] * clean + (1 - t[..., None]) * a, 0, 1), atol=1e-6)


def test_unknown_photo_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown photo"):
        samples.photo("lena")


def test_spread_hints_mark_different_parts_of_each_region():
    """Spread hint disks lie far apart; the random layout may bunch them (horse: all in the neck)."""
    from scipy import ndimage

    def min_gap(hints: np.ndarray, value: int) -> float:
        labels, n = ndimage.label(hints == value)
        centres = np.array(ndimage.center_of_mass(hints == value, labels, range(1, n + 1)))
        gaps = np.sqrt(((centres[:, None] - centres[None]) ** 2).sum(-1))
        return float(gaps[np.triu_indices(n, 1)].min())

    _, truth, spread = samples.segmentation_composite(size=128)
    _, _, bunched = samples.segmentation_composite(size=128, spread_hints=False)
    assert np.all(truth[spread == 1]) and not np.any(truth[spread == 2])
    assert min_gap(spread, 1) > 20 and min_gap(spread, 2) > 30
    assert min_gap(bunched, 1) < min_gap(spread, 1)


@pytest.mark.parametrize("name", samples.VALIDATION_PHOTOS)
def test_validation_photos_load_as_unit_rgb_squares(name):
    """The validation photos (grey ones repeated over channels, the motorcycle's left view) load like the others."""
    image = samples.photo(name, 32)
    assert image.shape == (32, 32, 3) and image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 1.0 and image.std() > 0.01
    image, truth, hints = samples.segmentation_composite(32, foreground=name, background="cat")
    assert image.shape == (32, 32, 3) and truth.any() and (hints == 1).any()
