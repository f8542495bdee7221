"""``--region``: run on part of an image (its mask cropped alike), recorded, and refused when off the image."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_doubledip import cli, samples
from napari_doubledip._io import read_image, write_image

FAST = ["--steps", "2", "--seed", "1", "--device", "cpu", "--quiet"]


def _u8(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0:16,8:24", [0, 16, 8, 24]), (":16,8:", [None, 16, 8, None]), ("-20:-4, 0:10", [-20, -4, 0, 10])],
)
def test_parse_region(text, expected):
    assert cli.parse_region(text) == expected


@pytest.mark.parametrize("text", ["0:16", "0:16,8", "a:b,0:1", "0:1:2,0:1", ""])
def test_parse_region_rejects_garbage(text):
    with pytest.raises(Exception, match="--region"):
        cli.parse_region(text)


def test_inpaint_a_region_crops_the_image_and_its_mask(tmp_path):
    damaged, mask, _ = samples.photo_with_missing_pixels(size=48, fraction=0.3)
    write_image(tmp_path / "cup.png", _u8(damaged))
    write_image(tmp_path / "cup_mask.png", mask.astype(np.uint8) * 255)
    out = tmp_path / "out"
    args = ["inpaint", str(tmp_path / "cup.png"), "--mask", str(tmp_path / "cup_mask.png"), "--out", str(out)]
    assert cli.main([*args, "--region", "8:40,16:", *FAST]) == 0
    result, _ = read_image(out / "cup_inpaint.png")
    assert result.shape == (32, 32, 3)
    crop, known = _u8(damaged)[8:40, 16:], ~mask[8:40, 16:]
    np.testing.assert_array_equal(result[known], crop[known])  # the mask was cropped alike
    sidecar = json.loads((out / "cup_inpaint.json").read_text())
    assert sidecar["region"] == [8, 40, 16, None] and sidecar["request"]["region"] == [8, 40, 16, None]
    # another region is another request: the rerun computes it
    assert cli.main([*args, "--region", "0:16,0:16", *FAST]) == 0
    assert read_image(out / "cup_inpaint.png")[0].shape == (16, 16, 3)


def test_a_region_off_the_image_fails_by_name(tmp_path, capsys):
    noisy, _ = samples.noisy_photo(size=32)
    write_image(tmp_path / "in.png", _u8(noisy))
    out = tmp_path / "out"
    status = cli.main(
        ["denoise", str(tmp_path / "in.png"), "--out", str(out), "--region", "0:64,0:16", *FAST]
    )
    assert status != 0
    err = capsys.readouterr().err
    assert "--region 0:64,0:16" in err and "32 x 32" in err
    assert not list(out.glob("*.png"))
    assert (tmp_path / "in.png").exists()


def test_region_is_not_offered_where_several_images_form_one_job():
    with pytest.raises(SystemExit):
        cli.main(["watermark", "a.png", "b.png", "--out", "o", "--region", "0:8,0:8"])


def test_a_box_is_moved_into_the_region(tmp_path, monkeypatch):
    from napari_doubledip import api

    seen = {}

    def fake_run(entry, image, *rest, callback=None, **opts):
        seen["shape"], seen["box"] = image.shape, opts.get("box")
        raise RuntimeError("stop here")

    monkeypatch.setattr(api, "run", fake_run)
    noisy, _ = samples.noisy_photo(size=48)
    write_image(tmp_path / "in.png", _u8(noisy))
    args = ["segment", str(tmp_path / "in.png"), "--out", str(tmp_path / "o"), "--box", "10,20,30,40"]
    cli.main([*args, "--region", "8:40,16:48", *FAST])
    assert seen["shape"][:2] == (32, 32) and list(seen["box"]) == [2, 4, 22, 24]
