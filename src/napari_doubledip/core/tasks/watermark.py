"""Watermark removal (Double-DIP): K clean generators, one shared mask and watermark, then inversion."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import torch

from ...registry.watermark import WatermarkOptions
from ..conversion import from_unit, mask_plane, to_unit_jointly
from ..losses import ExclusionLoss
from ..network import resolve_net_config
from .base import NoiseInput, PaddedImage, Result, RunContext, Task

#: How far inside (0, 1) a learned colour starts (its logit must be finite).
COLOUR_MARGIN = 0.02

__all__ = [
    "WatermarkResult",
    "WatermarkTask",
    "centre_crops",
    "estimate_support",
    "fill_area",
    "fill_under",
    "keep_removals",
    "keep_watermark_parts",
    "pick_per_part",
    "refine_opacity",
    "shared_gradient",
]


def centre_crops(
    shapes: list[tuple[int, ...]], max_difference: int = 16
) -> tuple[tuple[int, int], list[tuple[slice, slice]]]:
    """The common centred ``(Y, X)`` area of images whose sizes differ a little.

    Parameters
    ----------
    shapes
        The images' shapes (``(Y, X)`` or ``(Y, X, C)``).
    max_difference
        Largest allowed difference in rows or columns between the biggest and the smallest image.

    Returns
    -------
    common, crops
        The common ``(Y, X)`` size and, per image, the slices of that area centred in it.

    Raises
    ------
    ValueError
        If the sizes differ by more than ``max_difference`` pixels along Y or X.
    """
    hs = [int(s[0]) for s in shapes]
    ws = [int(s[1]) for s in shapes]
    if max(hs) - min(hs) > max_difference or max(ws) - min(ws) > max_difference:
        raise ValueError(
            f"images cannot be aligned by their centres: their (Y, X) sizes {[s[:2] for s in shapes]} "
            f"differ by more than {max_difference} pixels (max_size_difference); images that share a "
            "watermark should show it at the same place and scale"
        )
    h, w = min(hs), min(ws)
    crops = []
    for hk, wk in zip(hs, ws, strict=True):
        y0, x0 = (hk - h) // 2, (wk - w) // 2
        crops.append((slice(y0, y0 + h), slice(x0, x0 + w)))
    return (h, w), crops


@dataclass(frozen=True)
class WatermarkResult(Result):
    """Result of :class:`WatermarkTask`.

    Attributes
    ----------
    images
        The K cleaned images, each with its input's own shape, dtype and value range (pixels
        outside the common centred area are the input's own).
    watermark
        The watermark as it is laid over the images, ``alpha * colour``, on the common area, in
        the first input's layout.
    mask
        Float ``(Y, X)`` in [0, 1] on the common area: the watermark's estimated opacity
        (1 = watermark only).
    offsets
        Per image, the ``(row, column)`` of the common area's top-left corner in that image.
    colour
        The watermark's colour in unit range, ``(C,)``.
    """

    images: list[np.ndarray] = None  # type: ignore[assignment]
    watermark: np.ndarray = None  # type: ignore[assignment]
    mask: np.ndarray = None  # type: ignore[assignment]
    offsets: list[tuple[int, int]] = None  # type: ignore[assignment]
    colour: np.ndarray = None  # type: ignore[assignment]

    def record(self) -> dict[str, Any]:
        return {"colour": self.colour, "offsets": self.offsets}


class WatermarkTask(Task):
    """Remove a watermark shared by K images (or by one image, with a hint) with Double-DIP.

    Model: ``I_k = m * w + (1 - m) * y_k`` with K clean generators ``y_k`` (one grouped forward
    pass), one small shared mask generator ``m`` learning ``mask_lr_factor`` times slower (a
    fast mask lets the clean images keep the watermark), a shared watermark colour ``w``
    (white, or learned), and the exclusion loss between every pair of clean images.

    The returned images are NOT the generators' outputs where the watermark is semi-transparent:
    there the estimated opacity and colour invert the overlay exactly,
    ``y = (I - m * w) / (1 - m)``, which keeps all the detail; the generators' output is blended
    in only where the mask approaches opaque (``opaque_from`` .. ``opaque_full``), where
    inversion would amplify errors. Outside the mask the inputs come back unchanged, bit for bit.

    With K >= 2 images and no hint (``support``), the mark is first found where the images
    share an edge (:func:`estimate_support`: every image shows the same gradient, well above
    what shifted images share by chance); the mask is zero outside that support, so nothing
    else can change, and images that share no edge come back as they were. Inside, a second
    opacity is fitted with the images filled in over the mark's strokes (:func:`fill_under`)
    instead of the generators' outputs (this one does not depend on how many steps fit in the
    time), each part of the mark keeps the inversion that leaves less of the shared outline
    (:func:`pick_per_part`), and a part whose shared outline did not weaken, or an image whose
    own edge along it did not, gets the input back (:func:`keep_removals`).

    Parameters
    ----------
    images
        K >= 2 images sharing one watermark (sizes may differ by up to ``max_size_difference``
        pixels; they are aligned by their centres), or one image with a ``hint``.
    hint
        Optional ``(Y, X)`` array (the first image's size or the common size), nonzero where the
        watermark may be (a box or a rough mask); the mask is zero elsewhere. Required when K = 1.
    watermark
        ``"white"`` (default), ``"black"``, ``"learn"`` (a learned colour), or a colour in the
        images' value range (one value per channel, or a scalar).
    net, mask_net
        Networks of the clean generators and of the mask generator.
    lr, mask_lr_factor
        Adam learning rate of the clean generators; the mask's is ``lr / mask_lr_factor``.
    exclusion_weight
        Weight of the exclusion loss between pairs of clean images.
    mask_sparsity
        Weight of an L1 penalty on the mask (mean opacity): keeps it at zero away from the
        watermark, where a false opacity would bias the inversion.
    mask_init
        The mask generator's initial opacity (shifts its output bias). The data alone cannot
        tell a false opacity from none (the clean generators absorb it), so where the mask
        starts is where it stays away from the mark: measured at 128², 400 steps, three
        photos, starting at 0.1 instead of 0.5 gave 31.8 vs 23.1 dB for a faint mark (opacity
        0.25; at 0.5 the cleaned photos were worse than the inputs) and 32.2 vs 31.7 dB for
        opacity 0.5; 0.02 gave 32.9 and 31.0.
    clean_mask
        Before inverting, zero the mask outside the watermark: keep pixels above the mask's Otsu
        threshold (between the watermark's opacity and the background's false opacity), drop
        connected parts smaller than ``min_part`` times the largest part. Measured on the
        benchmark's three photos (128², 120 s): 20.8 dB -> 28.2 dB, mask IoU 0.66 -> 0.85; the
        generator's mask keeps a low false opacity off the mark that the inversion amplifies.
    refine_alpha
        After the clean-up, re-estimate the opacity of every pixel where the mask is nonzero by
        least squares over all K images and channels, with the generators' outputs as the
        images under the mark (:func:`refine_opacity`): the mask generator draws smooth, soft
        edges and a false opacity beside the mark; the per-pixel fit keeps the mark's sharp
        edges and shrinks the rest to 0. Measured on the benchmark's three photos (128², 400
        steps): 28.2 dB -> 31.7 dB.
    min_part
        Smallest kept part of the watermark, as a fraction of its largest part.
    opaque_from, opaque_full
        Mask values between which the output moves from the inversion to the generator.
    max_size_difference
        Largest size difference (pixels) that centre alignment accepts.
    support, support_margin, support_low
        Estimate the mark's support from the K images (no hint); widen it by ``support_margin``
        pixels; hysteresis fraction of the outline threshold (:func:`estimate_support`).
    """

    name = "watermark"
    default_steps = 2000
    monitor_key = "clean"

    def __init__(
        self,
        images: list[np.ndarray] | np.ndarray,
        hint: np.ndarray | None = None,
        *,
        options: WatermarkOptions | None = None,
        **kwargs: Any,
    ) -> None:
        self.opts = o = WatermarkOptions.build(options, **kwargs)
        if isinstance(images, np.ndarray):
            images = [images]
        images = list(images)
        if not images:
            raise ValueError(
                "remove_watermark needs K >= 2 images sharing a watermark, or one image and a hint"
            )
        if len(images) < 2 and hint is None:
            raise ValueError(
                "one image alone does not show which part is the watermark: give K >= 2 images that "
                "share it, or a hint ((Y, X) array, nonzero where the watermark may be)"
            )
        self.shapes = [tuple(np.shape(img)) for img in images]
        for i, s in enumerate(self.shapes):
            if len(s) not in (2, 3):
                raise ValueError(f"images[{i}] has shape {s}; expected (Y, X) or (Y, X, C)")
        if len({len(s) for s in self.shapes}) > 1 or len({s[2:] for s in self.shapes}) > 1:
            raise ValueError(f"images must all have the same number of channels, got shapes {self.shapes}")
        self.common, self.crops = centre_crops(self.shapes, o.max_size_difference)
        units, self.layouts = to_unit_jointly(images)
        # the K images on their common area, stacked once: (K, C, Y, X)
        self.units = np.stack([u[:, ys, xs] for u, (ys, xs) in zip(units, self.crops, strict=True)])
        self.full_units = units
        self.k = len(images)
        self.channels = self.layouts[0].channels
        self.inputs = [np.asarray(img) for img in images]
        self.hint = self._check_hint(hint)
        self.support: np.ndarray | None = None  # estimated from the K images (no hint)
        self.outline: np.ndarray | None = None
        if self.hint is None and o.support and self.k >= 2:
            self.support, self.outline = estimate_support(self.units, low=o.support_low, margin=o.support_margin)
            # a second guess at what lies under the mark, independent of the steps run: each image
            # filled in (biharmonic) over the outline's strokes
            self.fill_area = fill_area(self.outline, self.support)
            self.fill = fill_under(self.units, self.fill_area)
        scale = self.layouts[0].high - self.layouts[0].low
        watermark = o.watermark
        self.learn_colour = isinstance(watermark, str) and watermark == "learn"
        if isinstance(watermark, str):
            presets = {"white": 1.0, "black": 0.0, "learn": 1.0}  # a learned colour starts white
            colour = np.full(self.channels, presets[watermark])
            self.watermark_spec = watermark
        else:
            given = np.broadcast_to(np.asarray(watermark, np.float64).ravel(), (self.channels,))
            colour = (given - self.layouts[0].low) / (scale if scale > 0 else 1.0)
            self.watermark_spec = given.tolist()
        self.initial_colour = np.clip(colour, 0.0, 1.0)
        self.net_config = resolve_net_config(o.net)
        self.mask_config = resolve_net_config(o.mask_net)

    def _check_hint(self, hint: np.ndarray | None) -> np.ndarray | None:
        if hint is None:
            return None
        h = np.asarray(hint)
        if h.ndim == 3 and h.shape[:2] in (self.shapes[0][:2], self.common):
            h = mask_plane(h)  # an RGBA box by its alpha; an opaque RGBA image (the demos' PNG) by its RGB
        if h.ndim != 2 or h.shape not in (tuple(self.shapes[0][:2]), self.common):
            raise ValueError(
                f"hint has shape {h.shape} but the images are {self.shapes}; the hint must be 2-D with "
                f"the first image's (Y, X) size {tuple(self.shapes[0][:2])} or the common size {self.common}"
            )
        if np.issubdtype(h.dtype, np.floating) and not np.all(np.isfinite(h)):
            raise ValueError("hint contains NaN or infinite values")
        if h.shape != self.common:
            h = h[self.crops[0]]
        region = h != 0
        if not region.any():
            raise ValueError(
                "hint marks no pixel (within the images' common area): nonzero = may contain the watermark"
            )
        return region

    def setup(self, ctx: RunContext) -> None:
        self.ctx = ctx
        multiple = max(self.net_config.size_multiple, self.mask_config.size_multiple)
        self.padded = [PaddedImage(u, multiple, ctx.device) for u in self.units]
        self.target = torch.cat([p.tensor for p in self.padded], dim=0)  # (K, C, Yp, Xp)
        self.valid = self.padded[0].valid
        shape = self.padded[0].padded_shape
        self.clean_nets = self.build_net(self.net_config, self.channels, self.k, ctx, salt=1)
        self.mask_net = self.build_net(self.mask_config, 1, 1, ctx, salt=2)
        if self.opts.mask_init != 0.5:  # start from a faint mask: it grows where the data needs it
            self.mask_net.init_output(self.opts.mask_init)
        o = self.opts
        self.z = NoiseInput(ctx, self.k * self.net_config.input_depth, shape, o.input_std, o.reg_noise)
        self.zm = NoiseInput(ctx, self.mask_config.input_depth, shape, o.input_std, o.reg_noise)
        area = self.hint if self.hint is not None else self.support
        if area is not None:
            region = self.padded[0].pad(area.astype(np.float32), mode="constant")
            self.region = torch.from_numpy(region)[None, None].to(ctx.device)
        else:
            self.region = None
        # a colour at 0 or 1 has an infinite logit: start the learned colour just inside
        start = torch.as_tensor(self.initial_colour, dtype=torch.float32).clamp(COLOUR_MARGIN, 1 - COLOUR_MARGIN)
        logit = torch.logit(start)
        self.colour_logit = torch.nn.Parameter(logit.to(ctx.device), requires_grad=self.learn_colour)
        self.fixed_colour = torch.as_tensor(self.initial_colour, dtype=torch.float32, device=ctx.device)
        self.exclusion = ExclusionLoss(3)
        self.pairs = list(combinations(range(self.k), 2))

    def generators(self) -> list[tuple[Any, int]]:
        return [(self.net_config, self.k), (self.mask_config, 1)]

    def param_groups(self) -> list[dict[str, Any]]:
        groups = [
            {"params": list(self.clean_nets.parameters()), "lr": self.opts.lr},
            {"params": list(self.mask_net.parameters()), "lr": self.opts.lr / self.opts.mask_lr_factor},
        ]
        if self.learn_colour:
            groups.append({"params": [self.colour_logit], "lr": self.opts.lr})
        return groups

    def _colour(self) -> torch.Tensor:
        return torch.sigmoid(self.colour_logit) if self.learn_colour else self.fixed_colour

    def forward(self) -> dict[str, torch.Tensor]:
        clean = self.clean_nets(self.z.sample())[0]  # (K, C, Yp, Xp)
        mask = self.mask_net(self.zm.sample())[0]  # (1, 1, Yp, Xp)
        if self.region is not None:
            mask = mask * self.region
        return {"clean": clean, "mask": mask, "colour": self._colour()}

    def loss(self, out: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        clean, mask = out["clean"].float(), out["mask"].float()
        colour = out["colour"].float().view(1, -1, 1, 1)
        recon = mask * colour + (1 - mask) * clean
        err = (recon - self.target) ** 2 * self.valid
        data = err.sum() / (self.valid.sum() * self.k * self.channels)
        terms = {"data": data}
        total = data
        if self.pairs and self.opts.exclusion_weight > 0:
            i = [p[0] for p in self.pairs]
            j = [p[1] for p in self.pairs]
            excl = self.exclusion(clean[i], clean[j])
            total = total + self.opts.exclusion_weight * excl
            terms["exclusion"] = excl
        if self.opts.mask_sparsity > 0:
            l1 = (mask * self.valid).sum() / self.valid.sum()
            total = total + self.opts.mask_sparsity * l1
            terms["mask_l1"] = l1
        return total, terms

    def invert(self, clean: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> list[np.ndarray]:
        """Per image, undo the overlay where it is semi-transparent; generator output where opaque.

        ``clean``: ``(K, C, Y, X)`` generator outputs, ``mask``: ``(Y, X)``, ``colour``: ``(C,)``;
        all unit range on the common area.
        """
        m = mask[None]
        c = colour[:, None, None]
        o = self.opts
        blend = np.clip((m - o.opaque_from) / (o.opaque_full - o.opaque_from), 0.0, 1.0)
        out = []
        for unit, gen in zip(self.units, clean, strict=True):
            inverted = (unit - m * c) / np.maximum(1.0 - m, 1e-3)
            out.append(np.clip((1 - blend) * inverted + blend * gen, 0.0, 1.0))
        return out

    def outputs(self, out: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        padded = self.padded[0]
        clean = padded.to_numpy(out["clean"])  # (K, C, Y, X)
        mask = np.clip(padded.to_numpy(out["mask"])[0, 0], 0.0, 1.0)
        if self.opts.clean_mask:
            mask = keep_watermark_parts(mask, self.opts.min_part)
        colour = out["colour"].detach().float().cpu().numpy()
        if self.opts.refine_alpha:
            mask = refine_opacity(self.units, clean, mask, colour)
        area = self.hint if self.hint is not None else self.support
        if area is not None:
            mask = np.where(area, mask, 0.0).astype(np.float32)
        cleaned = np.stack(self.invert(clean, mask, colour))
        if self.support is not None and self.fill_area.any():
            # the opacity fitted over the filled-in images instead of the generators' outputs;
            # each part of the mark keeps whichever inversion leaves less of the shared outline
            alt_mask = refine_opacity(self.units, self.fill, self.fill_area.astype(np.float32), colour)
            alt = np.stack(self.invert(self.fill, alt_mask, colour))
            cleaned, mask = pick_per_part(self.units, [(cleaned, mask), (alt, alt_mask)], self.support, self.outline)
        changed = np.broadcast_to(mask > 0, cleaned.shape[:1] + mask.shape)
        if self.support is not None:
            cleaned, changed = keep_removals(self.units, cleaned, self.support, self.outline, changed)
        result: dict[str, np.ndarray] = {}
        for k, (unit, crop, layout) in enumerate(zip(cleaned, self.crops, self.layouts, strict=True)):
            full = self.full_units[k].copy()
            full[(slice(None), *crop)] = unit
            touched = np.zeros(layout.spatial_shape, bool)
            touched[crop] = changed[k]
            if len(self.shapes[k]) == 3:
                touched = touched[..., None]
            # the input's own pixels, bit for bit, wherever the mark was not found
            result[f"clean_{k}"] = np.where(touched, from_unit(full, layout), self.inputs[k])
        lay0 = self.layouts[0]
        wm_layout = type(lay0)(
            shape=(*self.common, *self.shapes[0][2:]),
            dtype=lay0.dtype,
            low=lay0.low,
            high=lay0.high,
            channels=lay0.channels,
            alpha=None if lay0.alpha is None else lay0.alpha[self.crops[0]],
        )
        result["watermark"] = from_unit(mask[None] * colour[:, None, None], wm_layout)
        result["mask"] = mask.astype(np.float32)
        self._colour_out = colour.astype(np.float64)  # for the result (not a stream output)
        return result

    def result(
        self, outputs: dict[str, np.ndarray], history: dict[str, np.ndarray], params: dict[str, Any]
    ) -> WatermarkResult:
        images = [outputs[f"clean_{k}"] for k in range(self.k)]
        colour = np.array(self._colour_out)
        offsets = [(c[0].start, c[1].start) for c in self.crops]
        params = {**params, "colour_unit": colour.tolist(), "offsets": offsets}
        return WatermarkResult(
            history=history,
            params=params,
            images=images,
            watermark=outputs["watermark"],
            mask=outputs["mask"],
            offsets=offsets,
            colour=colour,
        )

    def options(self) -> dict[str, Any]:
        return {
            **super().options(),
            "n_images": self.k,
            "watermark": self.watermark_spec,
            "hint": None if self.hint is None else {"pixels": int(self.hint.sum())},
            "common_shape": list(self.common),
            "input_shapes": [list(s) for s in self.shapes],
        }


def keep_watermark_parts(mask: np.ndarray, min_part: float = 0.025) -> np.ndarray:
    """Zero a soft watermark mask outside its watermark.

    Pixels at or below the mask's Otsu threshold, and connected parts above it smaller than
    ``min_part`` times the largest part, are set to 0; the rest keep their opacity. A mask
    with no clear two-level structure (nearly constant) is returned unchanged.
    """
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    m = np.asarray(mask, np.float32)
    if float(m.max() - m.min()) < 0.05:
        return m
    region = m > threshold_otsu(m)
    labels, n = ndimage.label(region)
    if n == 0:
        return m
    sizes = np.bincount(labels.ravel())[1:]
    keep = np.zeros(n + 1, bool)
    keep[1:] = sizes >= min_part * sizes.max()
    return np.where(keep[labels], m, 0.0).astype(np.float32)


def refine_opacity(
    images: np.ndarray, generated: np.ndarray, mask: np.ndarray, colour: np.ndarray, ridge: float = 0.04
) -> np.ndarray:
    """Per-pixel least-squares opacity of a watermark of known colour, where ``mask > 0``.

    Solves ``I_k - G_k = a (w - G_k)`` for ``a`` at each pixel over all images ``k`` and
    channels, shrunk towards 0 by a ridge of ``ridge * (1 - mask)**2`` per image and channel:
    where ``w - G_k`` is small the data cannot tell the opacity, and a false opacity is what the
    inversion amplifies; where the mask itself is nearly opaque the shrinkage fades, because
    there the inversion divides by ``1 - a`` and a small bias towards 0 leaves much of the mark
    in the image. ``images``/``generated``: ``(K, C, Y, X)``, ``mask``: ``(Y, X)``, ``colour``:
    ``(C,)``, all unit range. Returns the new ``(Y, X)`` mask in [0, 1], zero where ``mask`` is
    zero.
    """
    c = np.asarray(colour, np.float64)[None, :, None, None]
    g = np.asarray(generated, np.float64)
    m = np.clip(np.asarray(mask, np.float64), 0.0, 1.0)
    num = ((np.asarray(images, np.float64) - g) * (c - g)).sum((0, 1))
    den = ((c - g) ** 2).sum((0, 1))
    shrink = ridge * (1.0 - m) ** 2 * g.shape[0] * g.shape[1]
    alpha = np.clip(num / np.maximum(den + shrink, 1e-12), 0.0, 1.0)
    return np.where(m > 0, alpha, 0.0).astype(np.float32)


def _gradients(units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobel gradients ``(gy, gx)`` of the channel mean of ``(K, C, Y, X)`` images, each ``(K, Y, X)``."""
    from scipy import ndimage

    grey = np.asarray(units, np.float64).mean(1)
    gy = np.stack([ndimage.sobel(g, axis=0) for g in grey]) / 8.0
    gx = np.stack([ndimage.sobel(g, axis=1) for g in grey]) / 8.0
    return gy, gx


def _median_direction(gy: np.ndarray, gx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vector of the per-pixel median gradient over the K images (0 where it vanishes)."""
    my, mx = np.median(gy, 0), np.median(gx, 0)
    norm = np.hypot(my, mx)
    norm = np.where(norm > 0, norm, np.inf)
    return my / norm, mx / norm


def shared_gradient(units: np.ndarray, direction: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """How strongly ALL K images share an edge at each pixel.

    The median over the K images of the gradient vectors outlines what they share (Dekel et
    al., CVPR 2017); an edge of one photo's own scene moves the median little, but can still
    leave a median of some size where two photos happen to have edges. The score here is
    stricter: the smallest over the K images of the gradient's component along the median
    gradient's direction, clipped at 0, so every image must show the edge, with the same sign.

    Parameters
    ----------
    units
        ``(K, C, Y, X)`` images in unit range, aligned (the mark at the same place).
    direction
        ``(dy, dx)`` unit vectors to project on instead of the images' own median direction
        (to score other images, e.g. the cleaned ones, along the inputs' mark).

    Returns
    -------
    numpy.ndarray
        ``(Y, X)`` float64, >= 0, in grey levels per pixel of unit range.
    """
    gy, gx = _gradients(units)
    dy, dx = _median_direction(gy, gx) if direction is None else direction
    return np.clip((gy * dy + gx * dx).min(0), 0.0, None)


def estimate_support(
    units: np.ndarray,
    low: float = 0.2,
    margin: int = 6,
    relative: float = 0.25,
    chance_factor: float = 1.5,
    min_outline: int = 16,
    min_cluster: float = 0.1,
) -> tuple[np.ndarray, np.ndarray]:
    """Where a watermark shared by K >= 2 aligned images lies, from their shared gradients.

    1. :func:`shared_gradient` of the images, and of the same images shifted against each other
       by different amounts (what the score reaches by chance, without a shared mark).
    2. The mark's outline: a hysteresis threshold, strong pixels above ``max(chance_factor x the
       chance score's 99.9th percentile, relative x the score's 99.9th percentile)``, grown into
       connected pixels above ``low`` times that.
    3. Outline pixels in clusters (4-pixel reach) with at least ``min_outline`` pixels and
       ``min_cluster`` times the largest cluster's count are kept; the rest is chance.
    4. The support: the kept outline closed (3 px), its holes filled (the inside of letters
       and logos), widened by ``margin`` pixels.

    Parameters
    ----------
    units
        ``(K, C, Y, X)`` aligned images in unit range.
    low, margin, relative, chance_factor, min_outline, min_cluster
        As above.

    Returns
    -------
    support, outline
        Boolean ``(Y, X)`` arrays; both all False when the images share no edge beyond chance
        (then nothing should be changed).
    """
    from scipy import ndimage
    from skimage.filters import apply_hysteresis_threshold

    units = np.asarray(units, np.float64)
    k, _, h, w = units.shape
    score = shared_gradient(units)
    shifts = [((i * h) // k + 7 * i, (i * w) // k + 13 * i) for i in range(k)]
    shifted = np.stack([np.roll(u, s, axis=(-2, -1)) for u, s in zip(units, shifts, strict=True)])
    chance = shared_gradient(shifted)
    high = max(chance_factor * float(np.percentile(chance, 99.9)), relative * float(np.percentile(score, 99.9)))
    nothing = np.zeros((h, w), bool)
    if not high > 0:
        return nothing, nothing
    outline = apply_hysteresis_threshold(score, low * high, high)
    clusters, n = ndimage.label(ndimage.binary_dilation(outline, iterations=4))
    if n == 0:
        return nothing, nothing
    counts = np.asarray(ndimage.sum(outline, clusters, index=np.arange(1, n + 1)))
    keep = np.zeros(n + 1, bool)
    keep[1:] = (counts >= min_outline) & (counts >= min_cluster * counts.max())
    outline = outline & keep[clusters]
    if not outline.any():
        return nothing, nothing
    body = ndimage.binary_fill_holes(ndimage.binary_closing(outline, iterations=3) | outline)
    if margin > 0:
        body = ndimage.binary_dilation(body, iterations=margin)
    return body, outline


def keep_removals(
    units: np.ndarray, cleaned: np.ndarray, support: np.ndarray, outline: np.ndarray, changed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Keep a cleaned part of the support only where it removed the shared mark; else the input.

    For each connected part of ``support``: if the cleaned images share at least as strong an
    edge along the mark's outline as the inputs did (``|median over the K images of the
    gradient along the inputs' median gradient direction|``, mean over the part's ``outline``
    pixels; an over-correction, the edge reversed, counts too), the part is given back as the
    inputs for all images; otherwise, each image whose own edge along the outline did not
    weaken (``|its gradient along that direction|``, mean over those pixels) gets its input
    back there.

    Parameters
    ----------
    units, cleaned
        ``(K, C, Y, X)`` inputs and cleaned images, unit range, on the common area.
    support, outline
        Boolean ``(Y, X)``, from :func:`estimate_support`.
    changed
        Boolean ``(K, Y, X)`` (or broadcastable): where each cleaned image differs from its input.

    Returns
    -------
    cleaned, changed
        New arrays: the cleaned images with the refused parts reset to the inputs, and where
        they still differ.
    """
    from scipy import ndimage

    units = np.asarray(units)
    out = np.array(cleaned, copy=True)
    changed = np.array(np.broadcast_to(changed, out.shape[:1] + out.shape[2:]), copy=True)
    gy, gx = _gradients(units)
    dy, dx = _median_direction(gy, gx)
    proj_in = gy * dy + gx * dx  # (K, Y, X)
    oy, ox = _gradients(out)
    proj_out = oy * dy + ox * dx
    shared_in = np.abs(np.median(proj_in, 0))
    shared_out = np.abs(np.median(proj_out, 0))
    parts, n = ndimage.label(support)
    for part in range(1, n + 1):
        where = parts == part
        on_outline = where & outline
        if not on_outline.any() or shared_out[on_outline].mean() >= shared_in[on_outline].mean():
            refuse = np.ones(len(out), bool)
        else:
            refuse = np.abs(proj_out[:, on_outline]).mean(1) >= np.abs(proj_in[:, on_outline]).mean(1)
        for k in np.flatnonzero(refuse):
            out[k][:, where] = units[k][:, where]
            changed[k][where] = False
    return out, changed


def fill_area(outline: np.ndarray, support: np.ndarray, close: int = 2, widen: int = 2) -> np.ndarray:
    """The mark's strokes: its ``outline`` closed (``close`` px) and widened (``widen`` px), within ``support``."""
    from scipy import ndimage

    strokes = ndimage.binary_closing(outline, iterations=close) | outline
    if widen > 0:
        strokes = ndimage.binary_dilation(strokes, iterations=widen)
    return strokes & support


def fill_under(units: np.ndarray, area: np.ndarray) -> np.ndarray:
    """Each ``(C, Y, X)`` image of ``units`` filled in over ``area`` by biharmonic inpainting.

    Parameters
    ----------
    units
        ``(K, C, Y, X)`` images in unit range.
    area
        Boolean ``(Y, X)``: the pixels to fill.

    Returns
    -------
    numpy.ndarray
        ``(K, C, Y, X)`` float32 in [0, 1], equal to ``units`` off ``area``.
    """
    from skimage.restoration import inpaint_biharmonic

    units = np.asarray(units, np.float32)
    if not area.any():
        return units.copy()
    filled = [inpaint_biharmonic(np.moveaxis(u, 0, -1), area, channel_axis=-1) for u in units]
    return np.clip(np.stack([np.moveaxis(f, -1, 0) for f in filled]), 0.0, 1.0).astype(np.float32)


def pick_per_part(
    units: np.ndarray,
    candidates: list[tuple[np.ndarray, np.ndarray]],
    support: np.ndarray,
    outline: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """For each connected part of ``support``, the candidate that leaves the least shared outline.

    Each candidate is ``(cleaned, mask)``: ``(K, C, Y, X)`` images and their ``(Y, X)`` opacity.
    The score of a candidate on a part is the mean over the part's ``outline`` pixels of
    ``|median over the K images of the gradient along the inputs' median gradient direction|``:
    what is left of the mark's edges, or what an over-correction drew in their place (the
    same edge reversed). Ties go to the first candidate.

    Returns
    -------
    cleaned, mask
        The combined images and opacity (copies).
    """
    from scipy import ndimage

    gy, gx = _gradients(units)
    dy, dx = _median_direction(gy, gx)
    scores = []
    for c, _ in candidates:
        cy, cx = _gradients(c)
        scores.append(np.abs(np.median(cy * dy + cx * dx, 0)))
    cleaned = np.array(candidates[0][0], copy=True)
    mask = np.array(candidates[0][1], np.float32, copy=True)
    parts, n = ndimage.label(support)
    for part in range(1, n + 1):
        where = parts == part
        on_outline = where & outline
        if not on_outline.any():
            continue
        best = int(np.argmin([s[on_outline].mean() for s in scores]))
        if best:
            cleaned[:, :, where] = candidates[best][0][:, :, where]
            mask[where] = candidates[best][1][where]
    return cleaned, mask
