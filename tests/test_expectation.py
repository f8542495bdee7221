"""What to expect on a long run: the loop's estimate, its line, and the CLI saying it once."""

from __future__ import annotations

import numpy as np

import napari_doubledip as dd
from napari_doubledip import cli, samples
from napari_doubledip._io import write_image
from napari_doubledip.core import snapshot
from napari_doubledip.core.snapshot import Snapshot


def _snap(expected: float | None, device: str = "cpu") -> Snapshot:
    return Snapshot(
        step=10, total=None, elapsed=1.0, max_seconds=None, losses={}, outputs={},
        expected_seconds=expected, device=device,
    )  # fmt: skip


def test_the_expectation_line_names_the_time_and_what_is_faster():
    line = _snap(600.0).expectation()
    assert line is not None and "about 10 min" in line and "GPU" in line and "region" in line
    assert _snap(30.0).expectation() is None  # a short run says nothing
    assert _snap(None).expectation() is None
    gpu = _snap(600.0, "cuda").expectation()
    assert gpu is not None and "GPU" not in gpu


def test_the_loop_estimates_the_run_from_measured_steps():
    noisy, _ = samples.noisy_photo(size=32)
    snaps = list(dd.denoise_stream(noisy, steps=12, seed=0, min_interval=0, device="cpu", threads=1))
    early = [s for s in snaps if s.step < snapshot.EXPECTATION_AFTER_STEPS]
    later = [s for s in snaps if s.step >= snapshot.EXPECTATION_AFTER_STEPS]
    assert early and all(s.expected_seconds is None for s in early)
    assert later and all(s.expected_seconds is not None and s.expected_seconds > 0 for s in later)
    # capped at 12 steps: the estimate is about what the run takes, not hundreds of steps more
    assert later[-1].expected_seconds < 3 * snaps[-1].elapsed + 1


def test_the_cli_says_what_to_expect_once(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(snapshot, "EXPECTATION_SECONDS", 0.0)  # every run counts as long here
    noisy, _ = samples.noisy_photo(size=32)
    write_image(tmp_path / "in.png", np.round(noisy * 255).astype(np.uint8))
    args = ["denoise", str(tmp_path / "in.png"), "--out", str(tmp_path / "o"), "--max-seconds", "2.5"]
    assert cli.main([*args, "--no-early-stop", "--device", "cpu", "--progress-every", "0.001"]) == 0
    err = capsys.readouterr().err
    assert err.count("expect about") == 1 and "a GPU" in err
