"""Image conversion: every accepted input kind round-trips; bad inputs raise clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from napari_doubledip.core.conversion import check_mask, from_unit, mask_plane, pad_amounts, to_unit


@pytest.mark.parametrize(
    "dtype, low, high",
    [
        (np.uint8, 0, 255),
        (np.uint16, 100, 4095),
        (np.int16, -1000, 1000),
        (np.int32, -5, 70000),
        (np.float32, -3.5, 12.0),
        (np.float64, 0.0, 1.0),
    ],
)
@pytest.mark.parametrize("shape", [(17, 23), (16, 31, 3), (20, 18, 4), (19, 16, 7), (24, 24, 1)])
def test_round_trip_keeps_shape_dtype_and_values(dtype, low, high, shape, rng):
    if np.issubdtype(dtype, np.integer):
        image = rng.integers(low, high + 1, size=shape).astype(dtype)
    else:
        image = rng.uniform(low, high, size=shape).astype(dtype)
    unit, layout = to_unit(image)
    channels = shape[2] - (shape[2] == 4) if len(shape) == 3 else 1
    assert unit.shape == (channels, *shape[:2])
    assert unit.dtype == np.float32
    assert unit.min() >= 0 and unit.max() <= 1
    back = from_unit(unit, layout)
    assert back.shape == image.shape and back.dtype == image.dtype
    if np.issubdtype(dtype, np.integer):
        np.testing.assert_array_equal(back, image)
    else:
        np.testing.assert_allclose(back, image, rtol=1e-5, atol=1e-5 * (high - low))


def test_rgba_alpha_passes_through_untouched(rng):
    image = rng.integers(0, 256, size=(20, 20, 4)).astype(np.uint8)
    unit, layout = to_unit(image)
    assert unit.shape[0] == 3
    # even if the engine's colour output changes completely, alpha stays as given
    back = from_unit(np.zeros_like(unit), layout)
    np.testing.assert_array_equal(back[..., 3], image[..., 3])


def test_bool_images_round_trip(rng):
    image = rng.random((20, 21)) > 0.5
    unit, layout = to_unit(image)
    np.testing.assert_array_equal(from_unit(unit, layout), image)


def test_constant_image_round_trips():
    image = np.full((16, 16), 7, np.uint8)
    unit, layout = to_unit(image)
    np.testing.assert_array_equal(from_unit(unit, layout), image)


def test_results_stay_in_input_range():
    image = np.array([[10, 200]] * 16 * 8, np.uint8).reshape(16, 16)
    unit, layout = to_unit(image)
    out = from_unit(np.full_like(unit, 1.7), layout)  # engine overshoot is clipped
    assert out.max() == 200 and out.min() == 200


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((8, 40)), "too small"),
        (np.zeros(40), "1 dimensions"),
        (np.zeros((2, 3, 32, 32)), "4 dimensions"),
        (np.array([[np.nan] * 20] * 20), "NaN or infinite"),
        (np.full((20, 20), np.inf), "NaN or infinite"),
        (np.zeros((20, 20), complex), "unsupported dtype"),
        (np.array([["a"] * 20] * 20), "unsupported dtype"),
    ],
)
def test_bad_images_raise_clear_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        to_unit(bad)


def test_mask_shape_mismatch_names_both_shapes():
    _, layout = to_unit(np.zeros((20, 30)))
    with pytest.raises(ValueError, match=r"mask has shape \(30, 20\).*\(20, 30\)"):
        check_mask(np.zeros((30, 20)), layout)
    assert check_mask(np.ones((20, 30, 3)), layout).shape == (20, 30)


def _rgba_boxes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A box drawn white on an opaque black RGBA image, and drawn in the alpha alone."""
    box = np.zeros((20, 30), bool)
    box[5:12, 8:25] = True
    opaque = np.zeros((20, 30, 4), np.uint8)
    opaque[..., 3] = 255
    opaque[box, :3] = 255
    see_through = np.full((20, 30, 4), 255, np.uint8)  # white everywhere, transparent outside
    see_through[~box, 3] = 0
    return box, opaque, see_through


def test_mask_plane_reads_rgba_by_varying_alpha_else_by_colour():
    box, opaque, see_through = _rgba_boxes()
    np.testing.assert_array_equal(mask_plane(opaque) != 0, box)
    np.testing.assert_array_equal(mask_plane(see_through) != 0, box)
    rgb = np.zeros((20, 30, 3), np.int16)
    rgb[box, 1] = -3  # any nonzero channel counts, whatever its sign
    np.testing.assert_array_equal(mask_plane(rgb) != 0, box)
    flat = np.arange(6).reshape(2, 3)
    assert mask_plane(flat) is flat or np.shares_memory(mask_plane(flat), flat)


def test_check_mask_reads_rgba_masks_like_hints():
    """An opaque RGBA mask must not mark the whole frame just because its alpha is set."""
    box, opaque, see_through = _rgba_boxes()
    _, layout = to_unit(np.zeros((20, 30, 3)))
    for m in (opaque, see_through):
        np.testing.assert_array_equal(check_mask(m, layout), box)


@pytest.mark.parametrize("size, multiple", [(16, 32), (17, 32), (33, 8), (64, 32), (100, 16)])
def test_pad_amounts_reach_a_multiple(size, multiple):
    before, after = pad_amounts(size, multiple)
    padded = size + before + after
    assert padded % multiple == 0 and 0 <= after - before <= 1
    assert padded >= 2 * multiple and (before + after < multiple or padded == 2 * multiple)
