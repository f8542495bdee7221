"""The DIP "skip" encoder-decoder generator (Ulyanov et al.), batched over several nets.

One :class:`SkipNet` can hold ``n_nets`` independent generators of the same architecture.
They run as ONE forward pass: every convolution is a grouped convolution with one group per
net, BatchNorm is per channel (so per net), and skip concatenations interleave per net.
With ``n_nets=1`` it is exactly the classic single network.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["NetConfig", "PRESETS", "SkipNet", "resolve_net_config"]


@dataclass(frozen=True)
class NetConfig:
    """Architecture of a DIP skip network.

    Parameters
    ----------
    input_depth
        Channels of the fixed noise input (per net).
    channels_down, channels_up, channels_skip
        Channels per level of the encoder, the decoder and the skip branches (0 = no skip).
    filter_size_down, filter_size_up, filter_size_skip
        Convolution kernel sizes.
    upsample_mode
        ``"bilinear"`` or ``"nearest"``.
    pad
        ``"reflection"`` or ``"zero"``.
    need_sigmoid
        End with a sigmoid so outputs lie in (0, 1).
    need_1x1_up
        Add a 1x1 convolution after each decoder convolution, as in the DIP paper.
    negative_slope
        Slope of the LeakyReLU activations.
    """

    input_depth: int = 32
    channels_down: tuple[int, ...] = (128, 128, 128, 128, 128)
    channels_up: tuple[int, ...] = (128, 128, 128, 128, 128)
    channels_skip: tuple[int, ...] = (4, 4, 4, 4, 4)
    filter_size_down: int = 3
    filter_size_up: int = 3
    filter_size_skip: int = 1
    upsample_mode: str = "bilinear"
    pad: str = "reflection"
    need_sigmoid: bool = True
    need_1x1_up: bool = True
    negative_slope: float = 0.2

    def __post_init__(self) -> None:
        """Check the settings."""
        n = len(self.channels_down)
        if n == 0 or len(self.channels_up) != n or len(self.channels_skip) != n:
            raise ValueError(
                "channels_down, channels_up and channels_skip must be non-empty and of equal "
                f"length, got {len(self.channels_down)}, {len(self.channels_up)}, "
                f"{len(self.channels_skip)}"
            )
        if self.upsample_mode not in ("bilinear", "nearest"):
            raise ValueError(f"upsample_mode must be 'bilinear' or 'nearest', got {self.upsample_mode!r}")
        if self.pad not in ("reflection", "zero"):
            raise ValueError(f"pad must be 'reflection' or 'zero', got {self.pad!r}")
        for k in (self.filter_size_down, self.filter_size_up, self.filter_size_skip):
            if k < 1 or k % 2 == 0:
                raise ValueError(f"filter sizes must be odd and positive, got {k}")

    @property
    def levels(self) -> int:
        """Number of encoder levels (each halves the resolution)."""
        return len(self.channels_down)

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this."""
        return 2**self.levels

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (for metadata and JSON sidecars)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


PRESETS: dict[str, NetConfig] = {
    # The DIP paper's denoising network.
    "dip-classic": NetConfig(),
    # The Double-DIP paper's generators.
    "doubledip": NetConfig(
        input_depth=2,
        channels_down=(8, 16, 32, 64, 128),
        channels_up=(8, 16, 32, 64, 128),
        channels_skip=(0, 0, 0, 4, 4),
        filter_size_down=5,
        filter_size_up=5,
    ),
    # Our fast default: 32 channels at 5 levels. On a CPU it reaches a given quality several
    # times sooner than "dip-classic" (BENCHMARKS.md).
    "default": NetConfig(
        input_depth=32,
        channels_down=(32,) * 5,
        channels_up=(32,) * 5,
        channels_skip=(4,) * 5,
    ),
    # A small, shallow net for masks and other smooth components.
    "mask": NetConfig(
        input_depth=2,
        channels_down=(8, 16, 32),
        channels_up=(8, 16, 32),
        channels_skip=(0, 0, 4),
        filter_size_down=5,
        filter_size_up=5,
    ),
}


def resolve_net_config(net: str | NetConfig | dict[str, Any]) -> NetConfig:
    """Turn a preset name, a dict of settings or a :class:`NetConfig` into a :class:`NetConfig`.

    A dict may name a ``"preset"`` to start from and override any field.
    """
    if isinstance(net, NetConfig):
        return net
    if isinstance(net, str):
        try:
            return PRESETS[net]
        except KeyError:
            raise ValueError(f"unknown network preset {net!r}; choose one of {sorted(PRESETS)}") from None
    if isinstance(net, dict):
        settings = dict(net)
        base = resolve_net_config(settings.pop("preset", "default"))
        for key in ("channels_down", "channels_up", "channels_skip"):
            if key in settings:
                settings[key] = tuple(int(c) for c in settings[key])
        try:
            return replace(base, **settings)
        except TypeError as exc:
            raise ValueError(f"bad network settings {net!r}: {exc}") from None
    raise ValueError(f"net must be a preset name, a dict or a NetConfig, got {type(net).__name__}")


class _ConvBlock(nn.Module):
    """Grouped conv (+ BatchNorm + LeakyReLU) over ``groups`` nets."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        groups: int,
        cfg: NetConfig,
        stride: int = 1,
        norm_act: bool = True,
    ) -> None:
        super().__init__()
        self.pad = (kernel - 1) // 2
        self.reflect = cfg.pad == "reflection"
        self.conv = nn.Conv2d(
            c_in * groups,
            c_out * groups,
            kernel,
            stride=stride,
            padding=0 if self.reflect else self.pad,
            groups=groups,
        )
        self.norm = nn.BatchNorm2d(c_out * groups) if norm_act else None
        self.slope = cfg.negative_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The ``(B, n_nets, out_channels, Y, X)`` outputs of the nets for inputs ``z``."""
        if self.reflect and self.pad:
            p = self.pad
            # reflection needs more pixels than the padding; the deepest maps of small images
            # can be that small, and there replication stands in
            mode = "reflect" if min(x.shape[-2:]) > p else "replicate"
            x = F.pad(x, (p, p, p, p), mode=mode)
        x = self.conv(x)
        if self.norm is not None:
            x = F.leaky_relu(self.norm(x), self.slope, inplace=True)
        return x


class _Level(nn.Module):
    """One encoder/decoder level; holds the next level inside it."""

    def __init__(self, cfg: NetConfig, index: int, c_in: int, groups: int) -> None:
        super().__init__()
        c_down = cfg.channels_down[index]
        c_skip = cfg.channels_skip[index]
        last = index == cfg.levels - 1
        self.groups = groups
        self.c_skip = c_skip
        self.upsample_mode = cfg.upsample_mode
        self.skip = _ConvBlock(c_in, c_skip, cfg.filter_size_skip, groups, cfg) if c_skip else None
        self.down = nn.Sequential(
            _ConvBlock(c_in, c_down, cfg.filter_size_down, groups, cfg, stride=2),
            _ConvBlock(c_down, c_down, cfg.filter_size_down, groups, cfg),
        )
        self.deeper = None if last else _Level(cfg, index + 1, c_down, groups)
        c_deep = c_down if last else cfg.channels_up[index + 1]
        self.c_deep = c_deep
        self.norm = nn.BatchNorm2d((c_skip + c_deep) * groups)
        c_up = cfg.channels_up[index]
        up = [_ConvBlock(c_skip + c_deep, c_up, cfg.filter_size_up, groups, cfg)]
        if cfg.need_1x1_up:
            up.append(_ConvBlock(c_up, c_up, 1, groups, cfg))
        self.up = nn.Sequential(*up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        deep = self.down(x)
        if self.deeper is not None:
            deep = self.deeper(deep)
        if self.upsample_mode == "bilinear":
            deep = F.interpolate(deep, scale_factor=2.0, mode="bilinear", align_corners=False)
        else:
            deep = F.interpolate(deep, scale_factor=2.0, mode="nearest")
        if self.skip is not None:
            skip = self.skip(x)
            if self.groups == 1:
                deep = torch.cat([skip, deep], dim=1)
            else:  # interleave so that each net's channels stay contiguous for the grouped convs
                b, _, h, w = deep.shape
                deep = torch.cat(
                    [
                        skip.view(b, self.groups, self.c_skip, h, w),
                        deep.view(b, self.groups, self.c_deep, h, w),
                    ],
                    dim=2,
                ).view(b, -1, h, w)
        return self.up(self.norm(deep))


class SkipNet(nn.Module):
    """``n_nets`` DIP skip generators of one architecture, run as one grouped forward pass.

    Parameters
    ----------
    config
        The architecture (see :class:`NetConfig`).
    out_channels
        Output channels of each net.
    n_nets
        Number of independent nets.

    Notes
    -----
    Input: ``(B, n_nets * input_depth, H, W)`` with H and W multiples of
    ``config.size_multiple``. Output: ``(B, n_nets, out_channels, H, W)``.
    """

    def __init__(self, config: NetConfig, out_channels: int, n_nets: int = 1) -> None:
        super().__init__()
        if n_nets < 1 or out_channels < 1:
            raise ValueError("n_nets and out_channels must be positive")
        self.config = config
        self.n_nets = n_nets
        self.out_channels = out_channels
        self.body = _Level(config, 0, config.input_depth, n_nets)
        self.head = _ConvBlock(config.channels_up[0], out_channels, 1, n_nets, config, norm_act=False)

    @classmethod
    def stacked(cls, nets: list[SkipNet]) -> SkipNet:
        """One grouped net holding copies of single ``nets`` of one architecture, in order.

        Every parameter and BatchNorm statistic of a grouped net is laid out net-major, so net
        ``t``'s share of each is a contiguous slice: the grouped net's output ``[:, t]`` for the
        nets' inputs concatenated along channels is net ``t``'s own output, and each net trains
        as it would alone (its parameters are its own; Adam works per parameter).
        """
        first = nets[0]
        if any(
            n.n_nets != 1 or n.config != first.config or n.out_channels != first.out_channels for n in nets
        ):
            raise ValueError("stacked() takes single nets of one architecture and output size")
        device = next(first.parameters()).device
        grouped = cls(first.config, first.out_channels, len(nets)).to(device)
        with torch.no_grad():
            singles = [dict(n.state_dict()) for n in nets]
            for name, value in grouped.state_dict().items():
                if name.endswith("num_batches_tracked"):
                    value.copy_(singles[0][name])
                    continue
                value.view(len(nets), -1).copy_(torch.stack([s[name].reshape(-1) for s in singles]))
        return grouped

    def zero_output(self) -> None:
        """Zero the last convolution, so that every net outputs 0 (before the sigmoid) until trained.

        A net that outputs a correction to a given estimate starts at that estimate this way.
        """
        with torch.no_grad():
            self.head.conv.weight.zero_()
            if self.head.conv.bias is not None:
                self.head.conv.bias.zero_()

    def init_output(self, value: float) -> None:
        """Shift the output bias so that a sigmoid output starts near ``value`` in (0, 1).

        Without a final sigmoid (``need_sigmoid=False``) this does nothing.
        """
        if not self.config.need_sigmoid:
            return
        import numpy as np

        bias = self.head.conv.bias
        if bias is None:
            raise RuntimeError("the output convolution has no bias to shift")
        with torch.no_grad():
            bias += float(np.log(value / (1 - value)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """The ``(B, n_nets, out_channels, Y, X)`` outputs of the nets for the input noise ``z``."""
        y = self.head(self.body(z))
        if self.config.need_sigmoid:
            y = torch.sigmoid(y)
        return y.view(y.shape[0], self.n_nets, self.out_channels, *y.shape[2:])
