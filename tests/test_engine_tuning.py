"""Engine settings chosen by measurement: CPU precision policy, fused optimiser, EMA ramp."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import napari_doubledip as dd
from napari_doubledip.core import loop

FAST = {"device": "cpu", "threads": 1}


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_on_cpu_follows_native_bf16_support(monkeypatch, photo48, native):
    monkeypatch.setattr(loop, "cpu_has_native_bf16", lambda: native)
    monkeypatch.setattr(loop, "CPU_BF16_MIN_PARAMS", 1000)  # the tiny default net counts as big
    assert loop._autocast_dtype("auto", torch.device("cpu")) == (torch.bfloat16 if native else None)
    result = dd.denoise(photo48, steps=2, **FAST)
    assert result.params["precision"] == ("bfloat16" if native else "float32")
    # an explicit choice always wins
    assert dd.denoise(photo48, steps=1, precision="float32", **FAST).params["precision"] == "float32"
    assert loop._autocast_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16


def test_auto_precision_on_cpu_keeps_small_nets_in_float32(monkeypatch, photo48):
    monkeypatch.setattr(loop, "cpu_has_native_bf16", lambda: True)
    cpu = torch.device("cpu")
    big, small = loop.CPU_BF16_MIN_PARAMS, loop.CPU_BF16_MIN_PARAMS - 1
    assert loop._autocast_dtype("auto", cpu, big) == torch.bfloat16
    assert loop._autocast_dtype("auto", cpu, small) is None
    assert loop._autocast_dtype("bfloat16", cpu, small) == torch.bfloat16
    assert dd.denoise(photo48, steps=1, **FAST).params["precision"] == "float32"  # 152 k parameters
    classic = dd.denoise(photo48, steps=1, net="dip-classic", **FAST)  # 2.2 M parameters
    assert classic.params["precision"] == "bfloat16"


def test_bf16_size_rule_counts_one_generator_not_a_batch_of_them():
    from types import SimpleNamespace

    from napari_doubledip.core.network import PRESETS, SkipNet

    single = SkipNet(PRESETS["doubledip"], 3, n_nets=1)
    triple = SkipNet(PRESETS["doubledip"], 3, n_nets=3)
    per_net = sum(p.numel() for p in single.parameters())
    groups = [{"params": list(triple.parameters())}]
    assert loop.largest_net_params(SimpleNamespace(nets=triple), groups) == per_net
    assert loop.largest_net_params(SimpleNamespace(parts={"a": single, "b": triple}), groups) == per_net
    # a task that keeps its modules elsewhere counts all its parameters
    assert loop.largest_net_params(SimpleNamespace(), groups) == 3 * per_net


def test_auto_precision_elsewhere_stays_float32():
    assert loop._autocast_dtype("auto", torch.device("mps")) is None
    with pytest.raises(ValueError, match="precision must be"):
        loop._autocast_dtype("half", torch.device("cpu"))


def test_cpu_bf16_probe_returns_a_bool():
    assert isinstance(loop.cpu_has_native_bf16(), bool)


def test_optimizer_is_fused_adam_on_cpu():
    from napari_doubledip.core.adam import FusedAdam

    p = torch.nn.Parameter(torch.zeros(3))
    opt = loop.make_optimizer([{"params": [p], "lr": 0.1}], torch.device("cpu"))
    assert isinstance(opt, FusedAdam)
    p.grad = torch.ones(3)
    opt.step()
    np.testing.assert_allclose(p.detach().numpy(), -0.1, rtol=1e-5)


def test_fused_adam_gives_torch_adams_parameters_bit_for_bit():
    """Same kernel, same state: two groups at their own rates, gradients that vary, 20 steps."""
    from napari_doubledip.core.adam import FusedAdam

    gen = torch.Generator().manual_seed(0)
    start = [torch.randn(4, 5, generator=gen), torch.randn(7, generator=gen), torch.randn(3, generator=gen)]
    ours = [torch.nn.Parameter(t.clone()) for t in start]
    theirs = [torch.nn.Parameter(t.clone()) for t in start]
    opt_ours = FusedAdam([{"params": ours[:2], "lr": 0.01}, {"params": ours[2:], "lr": 0.003}])
    opt_theirs = torch.optim.Adam(
        [{"params": theirs[:2], "lr": 0.01}, {"params": theirs[2:], "lr": 0.003}], fused=True
    )
    for step in range(20):
        for params, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad(set_to_none=True)
            loss = sum(((p - 0.1 * step) ** 2 * (1 + k)).sum() for k, p in enumerate(params))
            loss.backward()
            opt.step()
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a, b)


def test_ema_decay_ramps_up_to_the_setting():
    assert loop.ema_decay(0.99, 1) < 0.2
    assert loop.ema_decay(0.99, 90) == pytest.approx(0.91)
    assert loop.ema_decay(0.99, 5000) == 0.99
    assert loop.ema_decay(0.0, 5000) == 0.0
    decays = [loop.ema_decay(0.99, s) for s in range(1, 2000)]
    assert all(a <= b for a, b in zip(decays, decays[1:], strict=False))


def test_output_average_uses_the_ramp(monkeypatch, photo48):
    """With the ramp, 3 steps' average is a known blend of the raw outputs (seen with ema=0)."""
    plain = {"guide": "none", "holdout": 0.0, "precision": "float32", **FAST}  # the average is returned
    raw = []
    for n in (1, 2, 3):
        raw.append(dd.denoise(photo48, steps=n, ema=0.0, **plain).image.astype(np.float64))
    avg = dd.denoise(photo48, steps=3, ema=0.99, **plain).image
    expected = raw[0]
    for step, frame in ((2, raw[1]), (3, raw[2])):
        w = 1 - loop.ema_decay(0.99, step)
        expected = expected + w * (frame - expected)
    np.testing.assert_allclose(avg, expected, atol=2e-5)
    # without the ramp (a flat 0.99) the average would still sit on the first output
    flat = raw[0] + 0.01 * (raw[1] - raw[0])
    flat = flat + 0.01 * (raw[2] - flat)
    assert np.abs(avg - flat).max() > 10 * np.abs(avg - expected).max()
