"""Running a widget on part of an image: a Shapes rectangle or the region in view; outputs land in place."""

from __future__ import annotations

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_doubledip import api  # noqa: E402
from napari_doubledip._qt.region import REGION_VIEW, REGION_WHOLE  # noqa: E402

from .test_widgets import click_run_and_wait, open_widget  # noqa: E402


def _rectangle(viewer, name, y0, x0, y1, x1, scale=(1, 1), translate=(0, 0)):
    """A Shapes layer holding one rectangle through the centres of pixels (y0, x0) and (y1, x1) of an image placed with ``scale`` / ``translate``."""
    world = [[translate[0] + scale[0] * y, translate[1] + scale[1] * x] for y, x in ((y0, x0), (y1, x1))]
    return viewer.add_shapes([np.array(world, float)], shape_type="rectangle", name=name)


def test_a_run_on_a_rectangle_crops_the_image_and_lands_in_place(viewer, qtbot, photo48):
    image = photo48.astype(np.float32)
    source = viewer.add_image(image.copy(), name="photo", scale=(2, 2), translate=(5, 7))
    shapes = _rectangle(viewer, "roi", 8, 10, 31, 39, scale=(2, 2), translate=(5, 7))
    widget = open_widget(viewer, "Denoise", steps=3)
    assert widget.form.region.value == REGION_WHOLE  # the whole image unless asked
    widget.form.region.value = shapes

    state = click_run_and_wait(qtbot, widget)

    np.testing.assert_array_equal(state.plan.images[0], image[8:32, 10:40])
    out = viewer.layers["photo · denoised"]
    assert out.data.shape == (24, 30, 3)
    assert tuple(out.scale) == (2, 2) and tuple(out.translate) == (5 + 2 * 8, 7 + 2 * 10)
    assert out.metadata["doubledip"]["region"] == [8, 32, 10, 40]
    np.testing.assert_array_equal(source.data, image)  # the user's image untouched
    # the same as the API given the crop and the same settings
    options = {k: v for k, v in state.plan.options.items() if k not in ("stop", "min_interval")}
    expected = api.denoise(image[8:32, 10:40].copy(), **options)
    np.testing.assert_allclose(out.data, expected.image, atol=1e-6)

    # then the whole image: the same output layer, full size, back at the image's corner
    widget.form.region.value = REGION_WHOLE
    click_run_and_wait(qtbot, widget)
    out = viewer.layers["photo · denoised"]
    assert out.data.shape == image.shape and tuple(out.translate) == (5, 7)
    assert "region" not in out.metadata["doubledip"]
    assert [layer.name for layer in viewer.layers].count("photo · denoised") == 1


def test_a_run_on_the_region_in_view(make_napari_viewer_proxy, qtbot, photo48):
    viewer = make_napari_viewer_proxy(show=True)
    image = photo48[..., 0].astype(np.float32)
    viewer.add_image(image.copy(), name="gray")
    widget = open_widget(viewer, "Denoise", steps=2)
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera  # napari >= 0.9: scene
    camera.zoom *= 2
    qtbot.waitUntil(lambda: viewer.layers["gray"].corner_pixels[1, 1] < 47, timeout=5000)
    (y0, x0), (y1, x1) = viewer.layers["gray"].corner_pixels
    widget.form.region.value = REGION_VIEW

    state = click_run_and_wait(qtbot, widget)

    out = viewer.layers["gray · denoised"]
    assert out.data.shape == (y1 + 1 - y0, x1 + 1 - x0) and out.data.shape != image.shape
    assert tuple(out.translate) == (y0, x0)
    np.testing.assert_array_equal(state.plan.images[0], image[y0 : y1 + 1, x0 : x1 + 1])


def test_hints_mask_and_box_follow_the_region(viewer, qtbot, photo48):
    image = photo48.astype(np.float32)
    viewer.add_image(image, name="scene")
    hints = np.zeros((48, 48), np.uint8)
    hints[20:26, 20:26] = 1
    hints[2:5, 2:5] = 2
    labels = viewer.add_labels(hints, name="hints")
    region = _rectangle(viewer, "roi", 4, 6, 43, 45)
    widget = open_widget(viewer, "Segment", steps=2)
    widget.form.region.value = region
    widget.hint_picker.value = labels

    state = click_run_and_wait(qtbot, widget)

    np.testing.assert_array_equal(state.plan.hints[0], hints[4:44, 6:46])
    labels.data[30, 30] = 2  # a live hint is read through the same crop
    np.testing.assert_array_equal(state.plan.read_hint(0), labels.data[4:44, 6:46])
    assert viewer.layers["scene · mask"].data.shape == (40, 40)
    assert tuple(viewer.layers["scene · mask"].translate) == (4, 6)

    # a box is moved into the region's pixels (and clipped to it)
    box_layer = _rectangle(viewer, "box", 10, 2, 30, 40)
    widget.hint_picker.value = box_layer
    state = click_run_and_wait(qtbot, widget)
    assert state.plan.options["box"] == [6.0, 0.0, 27.0, 35.0]


def test_a_region_that_cannot_be_used_says_why_and_starts_nothing(viewer, qtbot, photo48):
    image = photo48.astype(np.float32)
    source = viewer.add_image(image.copy(), name="photo")
    widget = open_widget(viewer, "Denoise", steps=2)
    names = ["photo"]

    outside = _rectangle(viewer, "outside", 60, 60, 80, 80)
    names.append("outside")
    widget.form.region.value = outside
    widget.run_button.click()
    assert not widget.is_running and "needs at least 16 x 16" in widget.status.text()

    tiny = _rectangle(viewer, "tiny", 10, 10, 22, 30)
    names.append("tiny")
    widget.form.region.value = tiny
    widget.run_button.click()
    assert not widget.is_running and "13 x 21 pixels" in widget.status.text()

    no_rectangle = viewer.add_shapes([np.array([[5, 5], [20, 30]])], shape_type="ellipse", name="ellipse")
    names.append("ellipse")
    widget.form.region.value = no_rectangle
    widget.run_button.click()
    assert not widget.is_running and "has no rectangle" in widget.status.text()

    assert [layer.name for layer in viewer.layers] == names
    np.testing.assert_array_equal(source.data, image)

    # a removed Shapes layer leaves the choice; the form falls back to the whole image
    viewer.layers.remove("ellipse")
    assert widget.form.region.value == REGION_WHOLE


def test_all_frames_of_a_stack_on_a_region(viewer, qtbot, photo48):
    gray = photo48.mean(axis=2).astype(np.float32)
    stack = np.stack([gray, gray[::-1], gray[:, ::-1]])
    viewer.add_image(stack.copy(), name="movie", scale=(4, 1, 1))
    region = _rectangle(viewer, "roi", 2, 20, 29, 47)  # a 2-D rectangle on a 3-D stack
    widget = open_widget(viewer, "Denoise", steps=2)
    widget.form.region.value = region
    widget.all_frames.value = True

    state = click_run_and_wait(qtbot, widget)

    out = viewer.layers["movie · denoised"]
    assert (
        out.data.shape == (3, 28, 28) and tuple(out.translate) == (0, 2, 20) and tuple(out.scale) == (4, 1, 1)
    )
    for t in range(3):
        np.testing.assert_array_equal(state.plan.images[t], stack[t, 2:30, 20:48])
        assert np.any(out.data[t] != 0)


def test_tasks_taking_a_group_of_images_offer_no_region(viewer):
    widget = open_widget(viewer, "Separate layers")
    assert widget.form.region is None
