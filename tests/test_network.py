"""The skip generator: presets, shapes, and batched nets equal to separate nets."""

from __future__ import annotations

import pytest
import torch

from napari_doubledip.core.network import PRESETS, NetConfig, SkipNet, resolve_net_config


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_build_and_map_noise_to_unit_range(name):
    cfg = PRESETS[name]
    net = SkipNet(cfg, out_channels=3)
    z = torch.rand(1, cfg.input_depth, cfg.size_multiple * 2, cfg.size_multiple)
    y = net(z)
    assert y.shape == (1, 1, 3, cfg.size_multiple * 2, cfg.size_multiple)
    assert float(y.min()) >= 0 and float(y.max()) <= 1


def test_classic_preset_is_the_dip_paper_net():
    cfg = PRESETS["dip-classic"]
    assert (cfg.input_depth, cfg.channels_down, cfg.channels_skip) == (32, (128,) * 5, (4,) * 5)
    assert cfg.filter_size_down == 3 and cfg.upsample_mode == "bilinear" and cfg.pad == "reflection"
    n_params = sum(p.numel() for p in SkipNet(cfg, 3).parameters())
    assert 2.1e6 < n_params < 2.3e6  # the paper's net has ~2.2 M parameters


def test_grouped_nets_match_separate_nets():
    cfg = PRESETS["doubledip"]
    torch.manual_seed(0)
    batched = SkipNet(cfg, out_channels=3, n_nets=2)
    singles = [SkipNet(cfg, out_channels=3, n_nets=1) for _ in range(2)]
    # copy net g's slice of every grouped parameter into single net g
    for g, single in enumerate(singles):
        for (_, p_b), (_, p_s) in zip(batched.state_dict().items(), single.state_dict().items()):
            if p_b.ndim == 0:
                p_s.copy_(p_b)
            else:
                n = p_s.shape[0]
                p_s.copy_(p_b[g * n : (g + 1) * n])
    z = torch.rand(1, 2 * cfg.input_depth, 64, 64)
    y = batched(z)
    for g, single in enumerate(singles):
        y_g = single(z[:, g * cfg.input_depth : (g + 1) * cfg.input_depth])
        torch.testing.assert_close(y[:, g], y_g[:, 0], rtol=1e-4, atol=1e-5)


def test_resolve_net_config_accepts_names_dicts_and_configs():
    assert resolve_net_config("default") is PRESETS["default"]
    custom = resolve_net_config({"preset": "doubledip", "channels_down": [4] * 5})
    assert custom.channels_down == (4,) * 5 and custom.input_depth == 2
    cfg = NetConfig(channels_down=(8, 8), channels_up=(8, 8), channels_skip=(0, 2))
    assert resolve_net_config(cfg) is cfg and cfg.size_multiple == 4
    with pytest.raises(ValueError, match="unknown network preset 'nope'"):
        resolve_net_config("nope")
    with pytest.raises(ValueError, match="equal length"):
        NetConfig(channels_down=(8, 8), channels_up=(8,), channels_skip=(0, 0))
