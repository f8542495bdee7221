"""Heavy preparation (priors, airlight, guide filters) runs in ``setup`` (the worker), not in ``__init__``.

``__init__`` runs where the caller builds the task (napari's GUI thread, when Run is pressed): it
only validates, so that bad inputs still fail at once.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_doubledip.core.tasks import dehaze, denoise, segment
from napari_doubledip.core.tasks.base import RunContext, make_generator


class Prepared(Exception):
    """Raised by the patched heavy functions: they were called."""


def _refuse(*_args, **_kwargs):
    raise Prepared


def _ctx() -> RunContext:
    device = torch.device("cpu")
    return RunContext(device=device, seed=0, generator=make_generator(device, 0))


@pytest.fixture
def image(photo48) -> np.ndarray:
    return np.ascontiguousarray(photo48[8:40, 8:40]).astype(np.float32)


def test_segmentation_prior_is_computed_in_setup(image, monkeypatch):
    monkeypatch.setattr(segment, "random_walk_prior", _refuse)
    monkeypatch.setattr(segment, "pixel_features", _refuse)
    hints = np.zeros((32, 32), np.uint8)
    hints[12:18, 12:18], hints[:3, :3] = 1, 2
    task = segment.SegmentTask(image, hints)  # validation only
    with pytest.raises(Prepared):
        task.setup(_ctx())
    with pytest.raises(ValueError, match="0 \\(unknown\\), 1 \\(foreground\\)"):
        segment.SegmentTask(image, hints * 3)  # bad input still fails at once


def test_dehazing_airlight_and_guide_are_computed_in_setup(image, monkeypatch):
    monkeypatch.setattr(dehaze, "estimate_airlight", _refuse)
    monkeypatch.setattr(dehaze, "envelope_transmission", _refuse)
    task = dehaze.DehazeTask(image)
    with pytest.raises(Prepared):
        task.setup(_ctx())
    with pytest.raises(ValueError, match="airlight"):
        dehaze.DehazeTask(image, airlight=[0.5, 0.5])


def test_denoising_noise_estimate_and_guide_are_computed_in_setup(image, monkeypatch):
    monkeypatch.setattr(denoise, "estimate_noise_sigma_unclipped", _refuse)
    task = denoise.DenoiseTask(image)  # validation only: no estimate, no guide
    with pytest.raises(Prepared):
        task.setup(_ctx())
    given = denoise.DenoiseTask(image, noise_sigma=0.1)  # a given level needs no estimate
    given.setup(_ctx())
    assert given.noise_sigma_unit == pytest.approx(0.1 / (image.max() - image.min()), rel=1e-5)
    with pytest.raises(ValueError, match="noise_sigma"):
        denoise.DenoiseTask(image, noise_sigma=-1.0)
