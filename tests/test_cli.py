"""The command line: batches, sidecars, resume, stacks, dask, every task's subcommand, the demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_doubledip import cli, samples
from napari_doubledip._io import expand_inputs, read_image, write_image

FAST = ["--steps", "3", "--seed", "1", "--device", "cpu", "--quiet"]


def _u8(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Two good tiny images (PNG RGB, 16-bit TIFF gray) and one broken PNG."""
    folder = tmp_path / "in"
    noisy, _ = samples.noisy_photo(size=32)
    write_image(folder / "rgb.png", _u8(noisy))
    write_image(folder / "gray16.tif", (noisy[..., 0] * 65535).astype(np.uint16))
    (folder / "broken.png").write_bytes(b"this is not a PNG file")
    return folder


def _sidecar(path: Path) -> dict:
    return json.loads(path.read_text())


def test_help_is_fast_and_imports_no_torch_or_qt():
    code = (
        "import sys\n"
        "from napari_doubledip import cli\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "bad = [m for m in ('torch', 'napari', 'qtpy', 'PyQt6', 'distributed') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("all", None), ("2", 2), ("1:3", slice(1, 3)), (":2", slice(None, 2)), ("-1", -1)],
)
def test_parse_frames(text, expected):
    assert cli.parse_frames(text) == expected


@pytest.mark.parametrize("text", ["some", "1:2:3:4", "a:b", ""])
def test_parse_frames_rejects_garbage(text):
    with pytest.raises(Exception, match="--frames"):
        cli.parse_frames(text)


def test_missing_out_is_a_usage_error(image_folder):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["denoise", str(image_folder)])
    assert exit_info.value.code == 2


def test_no_inputs_found(tmp_path, capsys):
    status = cli.main(["denoise", str(tmp_path / "nothing*.png"), "--out", str(tmp_path / "o"), *FAST])
    assert status != 0
    assert "nothing*.png" in capsys.readouterr().err


def test_batch_writes_results_and_reports_the_broken_file(image_folder, tmp_path, capsys):
    out = tmp_path / "out"
    before = {p.name: p.read_bytes() for p in image_folder.iterdir()}
    status = cli.main(["denoise", str(image_folder), "--out", str(out), *FAST])
    err = capsys.readouterr().err
    assert status == cli.EXIT_FAILED
    assert "broken.png" in err and "FAILED" in err
    assert "summary: 2 done" in err
    assert sorted(p.name for p in out.iterdir()) == [
        "gray16_denoise.json",
        "gray16_denoise.tif",
        "rgb_denoise.json",
        "rgb_denoise.png",
    ]
    rgb, _ = read_image(out / "rgb_denoise.png")
    assert rgb.shape == (32, 32, 3) and rgb.dtype == np.uint8
    side = _sidecar(out / "rgb_denoise.json")
    assert side["task"] == "denoise"
    assert side["seed"] == 1 and side["steps_run"] == 3
    assert side["device"] == "cpu"
    assert set(side["versions"]) >= {"napari_doubledip", "torch", "numpy"}
    assert "total" in side["final_losses"]
    assert side["parameters"]["steps"] == 3
    assert side["seconds"] > 0 and side["started"]
    # the inputs are untouched
    assert {p.name: p.read_bytes() for p in image_folder.iterdir()} == before


def test_uint16_tiff_round_trip(image_folder, tmp_path):
    out = tmp_path / "out"
    cli.main(["denoise", str(image_folder / "gray16.tif"), "--out", str(out), *FAST])
    result = tifffile.imread(out / "gray16_denoise.tif")
    source = tifffile.imread(image_folder / "gray16.tif")
    assert result.dtype == np.uint16 and result.shape == source.shape
    assert result.max() > 255  # the 16-bit range is used, not squeezed to 8 bits


def test_rerun_skips_finished_work_and_overwrite_reruns(image_folder, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    good = [str(image_folder / "rgb.png"), str(image_folder / "gray16.tif")]
    assert cli.main(["denoise", *good, "--out", str(out), *FAST]) == 0
    sidecar = out / "rgb_denoise.json"
    stamp = sidecar.stat().st_mtime_ns
    capsys.readouterr()

    calls = []
    real_run_job = cli.run_job
    monkeypatch.setattr(cli, "run_job", lambda job: calls.append(job) or real_run_job(job))
    assert cli.main(["denoise", *good, "--out", str(out), *FAST]) == 0
    err = capsys.readouterr().err
    assert calls == []
    assert "2 skipped" in err
    assert sidecar.stat().st_mtime_ns == stamp

    # a changed parameter is not the same result
    assert cli.main(["denoise", good[0], "--out", str(out), *FAST[:-1], "--seed", "2", "--quiet"]) == 0
    assert len(calls) == 1 and _sidecar(sidecar)["seed"] == 2

    calls.clear()
    assert cli.main(["denoise", *good, "--out", str(out), *FAST, "--overwrite"]) == 0
    assert len(calls) == 2
    assert _sidecar(sidecar)["seed"] == 1


def test_missing_output_is_rerun(image_folder, tmp_path):
    out = tmp_path / "out"
    args = ["denoise", str(image_folder / "rgb.png"), "--out", str(out), *FAST]
    assert cli.main(args) == 0
    (out / "rgb_denoise.png").unlink()
    assert cli.main(args) == 0
    assert (out / "rgb_denoise.png").is_file()


def test_same_seed_same_result_in_process(image_folder, tmp_path):
    for name in ("a", "b"):
        cli.main(
            ["denoise", str(image_folder / "rgb.png"), "--out", str(tmp_path / name), *FAST, "--threads", "1"]
        )
    a, _ = read_image(tmp_path / "a" / "rgb_denoise.png")
    b, _ = read_image(tmp_path / "b" / "rgb_denoise.png")
    np.testing.assert_array_equal(a, b)


def test_frames_of_a_stack(tmp_path, capsys):
    noisy, _ = samples.noisy_photo(size=32)
    stack = (np.stack([noisy[..., c] for c in range(3)]) * 65535).astype(np.uint16)  # (T, Y, X)
    tifffile.imwrite(tmp_path / "movie.tif", stack, photometric="minisblack")
    out = tmp_path / "out"
    status = cli.main(["denoise", str(tmp_path / "movie.tif"), "--frames", "all", "--out", str(out), *FAST])
    assert status == 0
    result = tifffile.imread(out / "movie_denoise.tif")
    assert result.shape == stack.shape and result.dtype == np.uint16
    side = _sidecar(out / "movie_denoise.json")
    assert side["frames"] == [0, 1, 2] and len(side["per_frame"]) == 3
    assert not any(p.name.endswith(".frames") for p in out.iterdir())  # intermediates cleaned up

    # a range of frames; then a rerun is skipped as a whole
    status = cli.main(
        ["denoise", str(tmp_path / "movie.tif"), "--frames", "1:3", "--out", str(tmp_path / "o2"), *FAST]
    )
    assert status == 0
    part = tifffile.imread(tmp_path / "o2" / "movie_denoise.tif")
    assert part.shape == (2, 32, 32) and part.dtype == np.uint16
    capsys.readouterr()
    cli.main(
        ["denoise", str(tmp_path / "movie.tif"), "--frames", "1:3", "--out", str(tmp_path / "o2"), *FAST]
    )
    assert "1 skipped" in capsys.readouterr().err


def test_stack_without_frames_is_reported(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "movie.tif", np.zeros((3, 32, 32), np.uint16), photometric="minisblack")
    status = cli.main(["denoise", str(tmp_path / "movie.tif"), "--out", str(tmp_path / "out"), *FAST])
    assert status == cli.EXIT_FAILED
    assert "--frames" in capsys.readouterr().err


def test_frame_out_of_range(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "movie.tif", np.zeros((3, 32, 32), np.uint16), photometric="minisblack")
    status = cli.main(
        ["denoise", str(tmp_path / "movie.tif"), "--frames", "7", "--out", str(tmp_path / "o"), *FAST]
    )
    assert status == cli.EXIT_FAILED
    assert "out of range" in capsys.readouterr().err


def test_inpaint_with_masks_matched_by_name(tmp_path):
    damaged, mask, _ = samples.photo_with_missing_pixels(size=32, fraction=0.3)
    write_image(tmp_path / "in" / "cup.png", _u8(damaged))
    write_image(tmp_path / "in" / "cup_mask.png", mask.astype(np.uint8) * 255)
    out = tmp_path / "out"
    # masks in the same folder: matched by name and not taken as inputs
    status = cli.main(
        ["inpaint", str(tmp_path / "in"), "--mask", str(tmp_path / "in"), "--out", str(out), *FAST]
    )
    assert status == 0
    assert sorted(p.name for p in out.iterdir()) == ["cup_inpaint.json", "cup_inpaint.png"]
    result, _ = read_image(out / "cup_inpaint.png")
    np.testing.assert_array_equal(result[~mask], _u8(damaged)[~mask])  # known pixels kept


def test_mask_and_hint_files_in_rgba_read_like_the_api(tmp_path):
    """RGBA mask/hint files: the alpha marks the region when it varies, else the colour does."""
    from napari_doubledip.core.conversion import mask_plane

    box = np.zeros((24, 32), bool)
    box[6:14, 5:27] = True
    see_through = np.zeros((24, 32, 4), np.uint8)  # a box drawn in the alpha alone (RGB black)
    see_through[box, 3] = 255
    opaque = np.zeros((24, 32, 4), np.uint8)  # white on black, fully opaque
    opaque[..., 3] = 255
    opaque[box, :3] = 255
    for name, arr in (("see_through.png", see_through), ("opaque.png", opaque)):
        write_image(tmp_path / name, arr)
        read = cli._read_binary(str(tmp_path / name), (24, 32, 3), "hint")
        np.testing.assert_array_equal(read, box)
        np.testing.assert_array_equal(read, mask_plane(arr) != 0)


def test_inpaint_without_matching_mask_fails_by_name(tmp_path, capsys):
    write_image(tmp_path / "in" / "cup.png", np.zeros((32, 32), np.uint8))
    (tmp_path / "masks").mkdir()
    write_image(tmp_path / "masks" / "other.png", np.zeros((32, 32), np.uint8))
    status = cli.main(
        [
            "inpaint",
            str(tmp_path / "in"),
            "--mask",
            str(tmp_path / "masks"),
            "--out",
            str(tmp_path / "o"),
            *FAST,
        ]
    )
    assert status == cli.EXIT_FAILED
    assert "cup.png" in capsys.readouterr().err


def test_segment_subcommand(tmp_path):
    image, _, hints = samples.segmentation_composite(size=48)
    write_image(tmp_path / "scene.png", _u8(image))
    write_image(tmp_path / "scene_hints.png", hints)
    out = tmp_path / "out"
    status = cli.main(
        [
            "segment",
            str(tmp_path / "scene.png"),
            "--hints",
            str(tmp_path / "scene_hints.png"),
            "--out",
            str(out),
            *FAST,
        ]
    )
    assert status == 0
    names = {p.name for p in out.iterdir()}
    assert {"scene_segment_foreground.png", "scene_segment_background.png", "scene_segment_mask.png"} <= names
    assert {"scene_segment_soft_mask.tif", "scene_segment.json"} <= names
    mask, _ = read_image(out / "scene_segment_mask.png")
    assert mask.shape == (48, 48) and set(np.unique(mask)) <= {0, 255}
    assert _sidecar(out / "scene_segment.json")["run_params"]["edge"] == "free"  # both labels painted


def test_segment_edge_option_reaches_the_task(tmp_path):
    image, _, hints = samples.segmentation_composite(size=48)
    write_image(tmp_path / "scene.png", _u8(image))
    write_image(tmp_path / "scene_hints.png", hints)
    args = ["segment", str(tmp_path / "scene.png"), "--hints", str(tmp_path / "scene_hints.png")]
    out = tmp_path / "out"
    assert cli.main([*args, "--edge", "background", "--out", str(out), *FAST]) == 0
    assert _sidecar(out / "scene_segment.json")["run_params"]["edge"] == "background"
    with pytest.raises(SystemExit):  # argparse: not one of the choices
        cli.main([*args, "--edge", "border", "--out", str(tmp_path / "o2"), *FAST])


def test_separate_subcommand_two_mixtures(tmp_path):
    images, _ = samples.mixtures(size=32)
    for k, im in enumerate(images):
        write_image(tmp_path / "mix" / f"mix{k}.png", _u8(im))
    out = tmp_path / "out"
    assert cli.main(["separate", str(tmp_path / "mix"), "--out", str(out), *FAST]) == 0
    side = _sidecar(out / "mix0_separate.json")
    assert len(side["inputs"]) == 2 and len(side["result"]["alphas"]) == 2
    for layer in ("layer_a", "layer_b"):
        arr, _ = read_image(out / f"mix0_separate_{layer}.png")
        assert arr.shape == (32, 32, 3)


def test_watermark_subcommand_images_grouped_by_folder(tmp_path):
    images, _, _ = samples.watermarked_photos(size=32)
    for k, im in enumerate(images):
        write_image(tmp_path / "shots" / f"shot{k}.png", _u8(im))
    out = tmp_path / "out"
    status = cli.main(
        ["watermark", str(tmp_path / "shots"), "--group-by", "folder", "--out", str(out), *FAST]
    )
    assert status == 0
    names = {p.name for p in out.iterdir()}
    assert {"shot0_clean.png", "shot1_clean.png", "shots_watermark.json", "shots_watermark.png"} <= names
    # the mask beside them: as a float TIFF, and as the mark's colour with alpha = mask in a PNG
    mask, _ = read_image(out / "shots_watermark_mask.tif")
    mark, _ = read_image(out / "shots_watermark_mark.png")
    assert mark.shape == (32, 32, 4) and mark.dtype == np.uint8
    np.testing.assert_array_equal(mark[..., 3], np.round(np.clip(mask, 0, 1) * 255).astype(np.uint8))
    assert (mark[..., :3] == 255).all() and mark[..., 3].max() > 100  # the mark was found


def test_watermark_start_opacity_reaches_the_task(tmp_path):
    images, _, _ = samples.watermarked_photos(size=32, names=("astronaut", "coffee"))
    for k, im in enumerate(images):
        write_image(tmp_path / f"shot{k}.png", _u8(im))
    out = tmp_path / "out"
    args = ["watermark", str(tmp_path / "shot0.png"), str(tmp_path / "shot1.png"), "--out", str(out)]
    assert cli.main([*args, "--start-opacity", "0.5", "--align", "bottom-right", *FAST]) == 0
    sidecar = _sidecar(next(out.glob("*.json")))
    assert sidecar["parameters"]["mask_init"] == pytest.approx(0.5)
    assert sidecar["parameters"]["align"] == "bottom-right" == sidecar["run_params"]["aligned_by"]
    # a bad value is the task's clear error, reported per job
    assert cli.main([*args, "--start-opacity", "1.5", "--overwrite", *FAST]) != 0


def test_dehaze_subcommand(tmp_path):
    pytest.importorskip("napari_doubledip.core.tasks.dehaze")
    hazy, _, _, _ = samples.hazy_photo(size=32)
    write_image(tmp_path / "hazy.png", _u8(hazy))
    out = tmp_path / "out"
    assert (
        cli.main(["dehaze", str(tmp_path / "hazy.png"), "--airlight", "230", "--out", str(out), *FAST]) == 0
    )
    assert {"hazy_dehaze.png", "hazy_dehaze_transmission.tif", "hazy_dehaze.json"} <= {
        p.name for p in out.iterdir()
    }
    assert _sidecar(out / "hazy_dehaze.json")["parameters"]["airlight"] == [230.0]


def test_local_cluster_gives_the_in_process_results_at_the_default_settings(image_folder, tmp_path):
    """The same request, the same images: in-process and on a LocalCluster, no --threads given.

    Before the thread count was fixed by default (in-process 2 threads, workers 1), this
    request gave images up to 25 grey levels apart.
    """
    pytest.importorskip("distributed")
    good = [str(image_folder / "rgb.png"), str(image_folder / "gray16.tif")]
    common = ["--steps", "40", "--seed", "3", "--quiet"]
    assert cli.main(["denoise", *good, "--out", str(tmp_path / "local"), *common]) == 0
    assert cli.main(["denoise", *good, "--out", str(tmp_path / "dask"), *common, "--workers", "2"]) == 0
    for stem, ext, grey in (("rgb_denoise", ".png", 1), ("gray16_denoise", ".tif", 257)):
        a, _ = read_image(tmp_path / "local" / f"{stem}{ext}")
        b, _ = read_image(tmp_path / "dask" / f"{stem}{ext}")
        assert a.dtype == b.dtype
        assert np.abs(a.astype(float) - b.astype(float)).max() <= 2 * grey  # within 2 grey levels
        local, dask = (
            _sidecar(tmp_path / "local" / f"{stem}.json"),
            _sidecar(tmp_path / "dask" / f"{stem}.json"),
        )
        assert local["numerics"] == dask["numerics"]
        assert local["numerics"]["threads"] == cli.parser.DEFAULT_THREADS
        assert local["request"] == dask["request"]
        assert local["request"]["numerics"] == {"threads": cli.parser.DEFAULT_THREADS, "precision": "auto"}


def test_resume_takes_the_numerics_into_account(image_folder, tmp_path, capsys):
    args = ["denoise", str(image_folder / "rgb.png"), "--out", str(tmp_path), *FAST]
    assert cli.main(args) == 0
    capsys.readouterr()
    assert cli.main(args) == 0
    assert "0 done, 1 skipped" in capsys.readouterr().err
    assert cli.main([*args, "--threads", "2"]) == 0  # another thread count: other numerics
    assert "1 done, 0 skipped" in capsys.readouterr().err
    assert _sidecar(tmp_path / "rgb_denoise.json")["numerics"]["threads"] == 2
    assert cli.main([*args, "--threads", "2", "--precision", "float32"]) == 0
    assert "1 done, 0 skipped" in capsys.readouterr().err
    # a result computed on another kind of device is not this run's result
    sidecar = tmp_path / "rgb_denoise.json"
    record = _sidecar(sidecar)
    record["numerics"]["device_kind"] = "cuda"
    sidecar.write_text(json.dumps(record))
    assert cli.main([*args, "--threads", "2", "--precision", "float32"]) == 0
    assert "1 done, 0 skipped" in capsys.readouterr().err


def test_demo_headless(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    out = tmp_path / "demo"
    status = cli.main(
        ["demo", "--gui", "--out", str(out), "--size", "32", "--steps", "5", "--device", "cpu", "-q"]
    )
    assert status == 0
    captured = capsys.readouterr()
    assert "running headless" in captured.err
    assert "PSNR" in captured.out and str(out) in captured.out
    assert {"input.png", "result.png", "clean.png", "demo.json"} <= {p.name for p in out.iterdir()}
    side = _sidecar(out / "demo.json")
    assert side["steps_run"] == 5 and side["metrics"]["psnr_input_db"] > 0


@pytest.mark.parametrize("task", ["inpaint", "segment", "separate", "watermark", "dehaze"])
def test_demo_other_tasks(task, tmp_path, capsys):
    if task == "dehaze":
        pytest.importorskip("napari_doubledip.core.tasks.dehaze")
    out = tmp_path / "demo"
    args = [
        "demo",
        "--task",
        task,
        "--out",
        str(out),
        "--size",
        "32",
        "--steps",
        "3",
        "--device",
        "cpu",
        "-q",
    ]
    assert cli.main(args) == 0
    assert (out / "demo.json").is_file()
    assert _sidecar(out / "demo.json")["metrics"]


def test_python_dash_m_entry_point(tmp_path):
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    done = subprocess.run(
        [sys.executable, "-m", "napari_doubledip", "--version"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0 and "napari-doubledip" in done.stdout


def test_expand_inputs_folders_globs_and_missing(tmp_path):
    write_image(tmp_path / "a" / "x.png", np.zeros((16, 16), np.uint8))
    write_image(tmp_path / "a" / "sub" / "y.tif", np.zeros((16, 16), np.uint16))
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    files, problems = expand_inputs(
        [str(tmp_path / "a"), str(tmp_path / "a" / "*.png"), str(tmp_path / "zz")]
    )
    assert sorted(f.name for f in files) == ["x.png", "y.tif"]  # no duplicates, no text file
    assert problems and problems[0][0].endswith("zz")


def test_scheduler_address_submits_to_a_running_cluster(image_folder, tmp_path):
    distributed = pytest.importorskip("distributed")
    common = ["--steps", "40", "--seed", "3", "--device", "cpu", "--quiet"]  # default threads
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        status = cli.main(
            ["denoise", str(image_folder / "rgb.png"), "--out", str(tmp_path / "o"), *common]
            + ["--scheduler", cluster.scheduler_address]
        )
    assert status == 0
    assert (tmp_path / "o" / "rgb_denoise.png").is_file()
    # the same request in-process gives the same image
    assert (
        cli.main(["denoise", str(image_folder / "rgb.png"), "--out", str(tmp_path / "local"), *common]) == 0
    )
    a, _ = read_image(tmp_path / "o" / "rgb_denoise.png")
    b, _ = read_image(tmp_path / "local" / "rgb_denoise.png")
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 2


def test_ctrl_c_stops_the_batch_and_keeps_finished_results(image_folder, tmp_path, capsys, monkeypatch):
    real_run_job = cli.run_job
    calls = []

    def interrupted_second_time(job):
        calls.append(job["name"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_run_job(job)

    monkeypatch.setattr(cli, "run_job", interrupted_second_time)
    good = [str(image_folder / "rgb.png"), str(image_folder / "gray16.tif")]
    status = cli.main(["denoise", *good, "--out", str(tmp_path / "o"), *FAST])
    assert status == cli.EXIT_INTERRUPTED
    assert "interrupted" in capsys.readouterr().err
    assert len(list((tmp_path / "o").glob("*.json"))) == 1  # the finished one, nothing half-written
    assert not list((tmp_path / "o").glob(".*part*"))


def test_demo_gui_with_a_display_opens_napari(tmp_path, monkeypatch):
    import types

    opened = []
    fake = types.ModuleType("napari_doubledip._qt.demo")
    fake.launch_demo = lambda task="denoise", run=True: opened.append((task, run))
    monkeypatch.setitem(sys.modules, "napari_doubledip._qt.demo", fake)
    monkeypatch.setenv("DISPLAY", ":99")
    assert cli.main(["demo", "--gui", "--task", "segment", "--out", str(tmp_path / "d")]) == 0
    assert opened == [("segment", True)]
    assert not (tmp_path / "d").exists()  # nothing ran headless


def test_output_folder_inside_or_equal_to_the_input_folder(image_folder, capsys):
    (image_folder / "broken.png").unlink()
    for out in (image_folder / "results", image_folder):
        assert cli.main(["denoise", str(image_folder), "--out", str(out), *FAST]) == 0
        capsys.readouterr()
        # a rerun neither takes the results as inputs nor redoes the work
        assert cli.main(["denoise", str(image_folder), "--out", str(out), *FAST]) == 0
        assert "0 done, 2 skipped" in capsys.readouterr().err
    assert not list(image_folder.rglob("*_denoise_denoise*"))


def test_in_process_run_leaves_torch_threads_alone(image_folder, tmp_path):
    import torch

    before = torch.get_num_threads()
    want = 1 if before != 1 else 2
    cli.main(
        ["denoise", str(image_folder / "rgb.png"), "--out", str(tmp_path), *FAST, "--threads", str(want)]
    )
    assert torch.get_num_threads() == before
    assert _sidecar(tmp_path / "rgb_denoise.json")["run_params"]["threads"] == want


def test_unreachable_scheduler_fails_fast_in_one_line_and_creates_nothing(image_folder, tmp_path, capsys):
    import time

    pytest.importorskip("distributed")
    out = tmp_path / "o"
    t0 = time.perf_counter()
    status = cli.main(
        [
            "denoise",
            str(image_folder / "rgb.png"),
            "--out",
            str(out),
            *FAST,
            "--scheduler",
            "tcp://127.0.0.1:1",
        ]
    )
    seconds = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert status == cli.EXIT_USAGE
    assert seconds < 10
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot reach the Dask scheduler at tcp://127.0.0.1:1" in errors[0]
    assert "Traceback" not in err
    assert not out.exists()


def test_out_that_is_a_file_or_cannot_be_made_is_a_usage_error_before_any_job(
    image_folder, tmp_path, capsys, monkeypatch
):
    calls = []
    monkeypatch.setattr(cli, "run_job", lambda job: calls.append(job) or {})
    a_file = tmp_path / "results.txt"
    a_file.write_text("keep me")
    for out, message in (
        (a_file, "is an existing file, not a folder"),
        (a_file / "sub", "is a file, not a folder"),
    ):
        status = cli.main(["denoise", str(image_folder / "rgb.png"), "--out", str(out), *FAST])
        err = capsys.readouterr().err
        assert status == cli.EXIT_USAGE
        assert message in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
    assert a_file.read_text() == "keep me" and not calls


def test_unwritable_out_is_found_before_any_job_computes(image_folder, tmp_path, capsys, monkeypatch):
    from napari_doubledip.cli import execute

    calls = []
    monkeypatch.setattr(cli, "run_job", lambda job: calls.append(job) or {})
    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):  # the file system refuses (root ignores permission bits)
        if self.name == "ro":
            raise PermissionError(13, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    assert execute.check_output_folder(tmp_path / "ro") is None  # its parent is writable: planned
    status = cli.main(["denoise", str(image_folder / "rgb.png"), "--out", str(tmp_path / "ro"), *FAST])
    assert status == cli.EXIT_USAGE
    assert "is not writable: Permission denied" in capsys.readouterr().err
    assert not calls and not (tmp_path / "ro").exists()


def test_stale_part_files_of_a_killed_write_are_removed_on_the_next_run(image_folder, tmp_path, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "o"
    frames = out / ".movie_denoise.frames"
    frames.mkdir(parents=True)
    stale = [
        out / f".rgb_denoise.{dead.pid}.part.png",
        out / f".rgb_denoise.json.{dead.pid}.part",
        frames / f".00001_image.{dead.pid}.part.npy",
    ]
    for path in stale:
        path.write_bytes(b"half a file")
    alive = out / f".other.{os.getpid()}.part.png"  # a write still going on here
    alive.write_bytes(b"in progress")
    assert cli.main(["denoise", str(image_folder / "rgb.png"), "--out", str(out), *FAST]) == 0
    assert not any(p.exists() for p in stale)
    assert alive.exists()
    assert (out / "rgb_denoise.png").is_file()


def test_planar_looking_tiff_with_frames_asks_for_axes(tmp_path, capsys):
    frames = (np.random.default_rng(0).random((3, 32, 32)) * 60000).astype(np.uint16)
    tifffile.imwrite(tmp_path / "movie.tif", frames)  # tifffile's defaults: stored as planar RGB
    status = cli.main(
        ["denoise", str(tmp_path / "movie.tif"), "--out", str(tmp_path / "o"), *FAST, "--frames", "all"]
    )
    err = capsys.readouterr().err
    assert status == cli.EXIT_FAILED
    assert "no ImageJ/OME metadata" in err and "--axes TYX" in err
    assert not list((tmp_path / "o").glob("*.tif"))
    assert cli.main(["denoise", str(tmp_path / "movie.tif"), "--out", str(tmp_path / "rgb"), *FAST]) == 0
    assert "note: movie.tif has no ImageJ/OME metadata" in capsys.readouterr().err
    assert read_image(tmp_path / "rgb" / "movie_denoise.tif")[0].shape == (32, 32, 3)  # as stored: planar RGB
    status = cli.main(
        [
            "denoise",
            str(tmp_path / "movie.tif"),
            "--out",
            str(tmp_path / "o"),
            *FAST,
            "--frames",
            "all",
            "--axes",
            "TYX",
        ]
    )
    assert status == cli.EXIT_OK
    stack, _ = read_image(tmp_path / "o" / "movie_denoise.tif")
    assert stack.shape == (3, 32, 32) and stack.dtype == np.uint16
    assert _sidecar(tmp_path / "o" / "movie_denoise.json")["frames"] == [0, 1, 2]


def test_axes_that_do_not_fit_the_file_fail_by_name(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "flat.tif", np.zeros((32, 32), np.uint16))
    status = cli.main(
        ["denoise", str(tmp_path / "flat.tif"), "--out", str(tmp_path / "o"), *FAST, "--axes", "TYX"]
    )
    assert status == cli.EXIT_FAILED
    assert "--axes TYX names 3 axes but flat.tif has 2" in capsys.readouterr().err


def test_bad_axes_and_seed_are_usage_errors(image_folder, tmp_path):
    for extra in (["--axes", "XY"], ["--seed", str(2**70)], ["--seed", "-1"]):
        with pytest.raises(SystemExit) as info:
            cli.main(["denoise", str(image_folder / "rgb.png"), "--out", str(tmp_path), *FAST, *extra])
        assert info.value.code == cli.EXIT_USAGE


def test_out_of_memory_failure_comes_with_advice(image_folder, tmp_path, capsys, monkeypatch):
    from napari_doubledip.core import memory

    monkeypatch.setattr(memory, "available_memory", lambda device: 32 * 2**20)
    status = cli.main(["denoise", str(image_folder / "rgb.png"), "--out", str(tmp_path), *FAST])
    err = capsys.readouterr().err
    assert status == cli.EXIT_FAILED
    assert "MemoryEstimateError: denoise of a 32 x 32 image needs about" in err and "region" in err
    assert not list(tmp_path.glob("*.png"))


def test_a_write_killed_midway_leaves_a_part_file_that_the_next_run_removes(image_folder, tmp_path):
    import signal
    import time

    out = tmp_path / "o"
    out.mkdir()
    code = (
        "import os, sys, time, numpy as np\n"
        "from napari_doubledip import _io\n"
        "os.replace = lambda *a: time.sleep(600)  # hold the write between its .part file and the rename\n"
        "_io.write_image(sys.argv[1], np.zeros((32, 32), np.uint8))\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", code, str(out / "rgb_denoise.png")])
    try:
        deadline = time.monotonic() + 60
        while not list(out.glob(".*.part*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(out.glob(".*.part*")), "the writer never started"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert [p.name for p in out.glob(".*.part*")] == [f".rgb_denoise.{writer.pid}.part.png"]
    assert cli.main(["denoise", str(image_folder / "rgb.png"), "--out", str(out), *FAST]) == 0
    assert not list(out.glob(".*.part*"))
    assert (out / "rgb_denoise.png").is_file() and (out / "rgb_denoise.json").is_file()


def test_demo_that_will_not_fit_fails_in_one_line(tmp_path, capsys, monkeypatch):
    from napari_doubledip.core import memory

    monkeypatch.setattr(memory, "available_memory", lambda device: 16 * 2**20)
    status = cli.main(
        ["demo", "--out", str(tmp_path / "d"), "--size", "32", "--steps", "2", "--device", "cpu", "-q"]
    )
    err = capsys.readouterr().err
    assert status == cli.EXIT_FAILED
    assert (
        "error: MemoryEstimateError: denoise of a 32 x 32 image needs about" in err and "Traceback" not in err
    )
