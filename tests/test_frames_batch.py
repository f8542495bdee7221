"""Frames of a stack side by side on one grouped net: the engine, the API, the CLI and the widget."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from napari_doubledip import api
from napari_doubledip.core.loop import optimise, run_to_end
from napari_doubledip.core.network import SkipNet, resolve_net_config
from napari_doubledip.core.tasks import frames as frames_module
from napari_doubledip.core.tasks.frames import FramesTask, frame_batch_size

FAST = {"device": "cpu", "threads": 1}


@pytest.fixture(scope="module")
def stack():
    from skimage import data

    clean = data.astronaut()[100:140, 150:190] / 255.0
    rng = np.random.default_rng(0)
    return [np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1) for _ in range(3)]


def _run(task, steps, **kw):
    return run_to_end(optimise(task, steps=steps, early_stop=False, seed=0, **FAST, **kw))


def test_stacked_nets_give_each_net_s_own_output():
    cfg = resolve_net_config("default")
    torch.manual_seed(0)
    nets = [SkipNet(cfg, 2) for _ in range(3)]
    grouped = SkipNet.stacked(nets)
    assert grouped.n_nets == 3
    inputs = [torch.rand(1, cfg.input_depth, 64, 64) for _ in range(3)]
    out = grouped(torch.cat(inputs, dim=1))
    for t, (net, z) in enumerate(zip(nets, inputs, strict=True)):
        torch.testing.assert_close(out[:, t], net(z)[:, 0], atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="single nets of one architecture"):
        SkipNet.stacked([nets[0], SkipNet(cfg, 3)])


@pytest.mark.parametrize(
    ("task", "options"),
    [("denoise", {}), ("denoise", {"patch": 16}), ("inpaint", {})],
)
def test_a_batch_of_one_frame_is_the_frame_s_own_run(stack, task, options):
    """The batch's plumbing (net calls, losses, held-out test, outputs) changes nothing."""
    args = [stack[0]] if task == "denoise" else [stack[0], np.random.default_rng(1).random((40, 40)) < 0.3]
    alone = _run(api.build_task(task, *args, **options), steps=4)
    batched = _run(FramesTask([api.build_task(task, *args, **options)]), steps=4)
    np.testing.assert_array_equal(batched.results[0].image, alone.image)
    assert batched.results[0].params["frames_batched"] == 1


def test_frames_side_by_side_train_as_they_would_alone(stack):
    """Two steps in (before Adam's first steps magnify float differences), each frame is its own run."""
    alone = [_run(api.build_task("denoise", f, holdout=0.0), steps=2).image for f in stack]
    batched = _run(FramesTask([api.build_task("denoise", f, holdout=0.0) for f in stack]), steps=2)
    for own, result in zip(alone, batched.results, strict=True):
        np.testing.assert_allclose(result.image, own, atol=1e-4)
    assert not np.allclose(batched.results[0].image, batched.results[1].image)  # frames not mixed up


def test_frames_of_a_batch_must_match(stack):
    with pytest.raises(ValueError, match="one size"):
        FramesTask([api.build_task("denoise", stack[0]), api.build_task("denoise", stack[1][:32, :32])])
    with pytest.raises(ValueError, match="same options"):
        FramesTask([api.build_task("denoise", stack[0]), api.build_task("denoise", stack[1], lr=0.002)])
    with pytest.raises(TypeError, match="single-image reconstructions"):
        FramesTask([api.build_task("segment", stack[0])])


def test_batch_size_rules(monkeypatch):
    from napari_doubledip.core.tasks.denoise import DenoiseTask
    from napari_doubledip.core.tasks.segment import SegmentTask

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert frame_batch_size(DenoiseTask, 8, 10**9, cpu) == 1  # auto on a CPU: one by one
    assert frame_batch_size(DenoiseTask, 8, None, cpu, 3) == 3
    assert frame_batch_size(DenoiseTask, 2, None, cpu, 5) == 2
    assert frame_batch_size(SegmentTask, 8, None, cpu, 4) == 1  # not a reconstruction
    monkeypatch.setattr("napari_doubledip.core.memory.available_memory", lambda device: 10 * 2**30)
    assert frame_batch_size(DenoiseTask, 20, 2**30, cuda) == 8  # 80% of 10 GiB over 1 GiB a frame
    assert frame_batch_size(DenoiseTask, 4, 2**30, cuda) == 4
    assert frame_batch_size(DenoiseTask, 4, 20 * 2**30, cuda) == 1  # not even one more fits
    for bad in (0, -1, "2", 1.5, True):
        with pytest.raises(ValueError, match="batch_frames"):
            frame_batch_size(DenoiseTask, 4, None, cpu, bad)


def _drain(stream):
    yielded = []
    while True:
        try:
            yielded.append(next(stream))
        except StopIteration as end:
            return yielded, end.value


def test_stream_frames_batches_and_reports_each_frame(stack):
    yielded, results = _drain(
        api.stream_frames("denoise", [(f,) for f in stack], batch_frames=3, steps=3, **FAST)
    )
    positions = [p for p, _ in yielded]
    assert positions[:3] == [0, 1, 2] and set(positions) == {0, 1, 2}
    assert all(snap.outputs["image"].shape == (40, 40, 3) for _, snap in yielded)
    assert [r.params["frames_batched"] for r in results] == [3, 3, 3]
    assert len({tuple(r.params["blend_weights"]) for r in results}) == 3  # each frame its own start
    final = {p: snap for p, snap in yielded if snap.done}
    for t, result in enumerate(results):
        np.testing.assert_array_equal(final[t].outputs["image"], result.image)
    # one by one (the default on a CPU): each frame a run of its own
    _yielded, alone = _drain(api.stream_frames("denoise", [(f,) for f in stack[:2]], steps=2, **FAST))
    assert all("frames_batched" not in r.params for r in alone) and len(alone) == 2


def test_stream_frames_stops_between_frames(stack):
    stop = threading.Event()
    stream = api.stream_frames("denoise", [(f,) for f in stack], steps=2, stop=stop, **FAST)
    yielded = []
    while True:
        try:
            yielded.append(next(stream))
        except StopIteration as end:
            results = end.value
            break
        stop.set()
    assert len(results) == 1 and {p for p, _ in yielded} == {0}


def test_cli_batches_the_frames_of_a_stack(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    from napari_doubledip import cli
    from napari_doubledip.cli.execute import frame_groups
    from napari_doubledip.cli.plan import plan_batch

    rng = np.random.default_rng(0)
    movie = (rng.random((3, 32, 32)) * 255).astype(np.uint8)
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, movie, imagej=True, metadata={"axes": "TYX"})
    out = tmp_path / "out"
    argv = ["denoise", str(path), "--frames", "all", "--steps", "2", "--device", "cpu", "--out", str(out)]
    parser = cli.build_parser()
    plan = plan_batch(parser.parse_args([*argv, "--batch-frames", "2"]))
    assert [len(g) for g in frame_groups(plan.jobs, local=True)] == [2, 1]
    assert [len(g) for g in frame_groups(plan_batch(parser.parse_args(argv)).jobs, local=True)] == [1, 1, 1]
    assert cli.main([*argv, "--batch-frames", "2", "-q"]) == 0
    result = tifffile.imread(out / "movie_denoise.tif")
    assert result.shape == movie.shape and all(np.any(result[t] != 0) for t in range(3))
    with pytest.raises(SystemExit):
        parser.parse_args([*argv, "--batch-frames", "0"])


def test_widget_all_frames_run_side_by_side(viewer, qtbot, photo48, monkeypatch):
    pytest.importorskip("napari")
    from .test_widgets import click_run_and_wait, open_widget

    monkeypatch.setattr(frames_module, "frame_batch_size", lambda cls, n, *a, **k: n)
    gray = photo48[8:40, 8:40].mean(axis=2).astype(np.float32)
    movie = np.stack([gray, gray[::-1], gray[:, ::-1]])
    source = viewer.add_image(movie.copy(), name="movie")
    widget = open_widget(viewer, "Denoise", steps=3)
    widget.all_frames.value = True
    state = click_run_and_wait(qtbot, widget)
    out = viewer.layers["movie · denoised"]
    assert out.data.shape == movie.shape
    assert [p["frames_batched"] for p in out.metadata["doubledip"]["per_frame"]] == [3, 3, 3]
    for t, result in enumerate(state.results):
        np.testing.assert_array_equal(out.data[t], result.image)
    np.testing.assert_array_equal(source.data, movie)


def test_auto_batching_builds_each_frame_task_once(stack, monkeypatch):
    """On a GPU the first frame's task sizes the batch; the batch reuses it instead of building it again."""
    import types

    from napari_doubledip.core import devices, memory
    from napari_doubledip.core.tasks import frames as frames_module

    monkeypatch.setattr(devices, "resolve_device", lambda device: types.SimpleNamespace(type="cuda"))
    monkeypatch.setattr(frames_module, "frame_batch_size", lambda *args, **kwargs: 2)
    monkeypatch.setattr(memory, "estimate_task_bytes", lambda task: 1000)
    built = []
    real_build = api.build_task

    def counting_build(*args, **kwargs):
        built.append(args[1].shape)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(api, "build_task", counting_build)
    _yielded, results = _drain(api.stream_frames("denoise", [(f,) for f in stack], steps=2, **FAST))
    assert len(stack) == 3 and len(results) == 3
    assert [r.params.get("frames_batched") for r in results] == [2, 2, None]
    # each frame's task built once: frame 0 sizes the batch and runs in it, frame 2 runs alone
    assert len(built) == 3
