"""Watermark removal (Double-DIP): K clean generators, one shared mask and watermark, then inversion."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import torch

from ...registry.watermark import WatermarkOptions
from ..conversion import ANCHORS, centre_crops, check_image, from_unit, to_unit_jointly
from ..formation import blend
from ..losses import ExclusionLoss
from ..network import resolve_net_config
from ..postprocess import keep_watermark_parts, refine_chroma, refine_opacity, smooth_inverted
from ..priors.watermark import (
    alignment_evidence,
    estimate_support,
    fill_area,
    fill_under,
    hint_region,
    keep_removals,
    opaque_area,
)
from .base import NoiseInput, PaddedImage, Result, RunContext, Task
from .reconstruction import weighted_mse
from .watermark_candidates import DataCandidates

#: How far inside (0, 1) a learned colour starts (its logit must be finite).
COLOUR_MARGIN = 0.02

__all__ = ["WatermarkResult", "WatermarkTask", "hint_region"]


#: Mean absolute difference (unit range, on the common area) under which two images count as the
#: same photo: about one grey level of 8 bits (a JPEG re-save of one photo stays under it).
DUPLICATE_DIFFERENCE = 0.004


def _refuse_duplicates(units: np.ndarray) -> None:
    """Raise for two of the ``(K, C, Y, X)`` images that are the same photo.

    The mark is told from the photos by what they share and the photos do not: a photo given
    twice shares everything with itself, and its whole picture was taken for the mark (a set of
    three with one photo twice came out 3.6 dB under its inputs).
    """
    k = len(units)
    for i in range(k):
        for j in range(i + 1, k):
            if float(np.mean(np.abs(units[i] - units[j]))) < DUPLICATE_DIFFERENCE:
                raise ValueError(
                    f"images[{i}] and images[{j}] are the same photo: watermark removal tells the mark "
                    "from the photos by what different photos share; leave the copy out"
                )


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
    mark
        The mark as found, to look at: float ``(Y, X, 4)`` RGBA on the first image's frame, its
        colour with alpha = ``mask`` (the widget's "watermark found" layer, the CLI's
        ``_mark.png``).
    offsets
        Per image, the ``(row, column)`` of the common area's top-left corner in that image.
    colour
        The watermark's colour in unit range, ``(C,)``.
    """

    images: list[np.ndarray] = None  # type: ignore[assignment]
    watermark: np.ndarray = None  # type: ignore[assignment]
    mask: np.ndarray = None  # type: ignore[assignment]
    mark: np.ndarray = None  # type: ignore[assignment]
    offsets: list[tuple[int, int]] = None  # type: ignore[assignment]
    colour: np.ndarray = None  # type: ignore[assignment]

    def record(self) -> dict[str, Any]:
        """The watermark's colour and the images' offsets, for the CLI's sidecar."""
        return {"colour": self.colour, "offsets": self.offsets}


class WatermarkTask(DataCandidates, Task[WatermarkOptions]):
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
    else can change, and images that share no edge come back as they were. Inside, candidates
    from the images alone (:mod:`~napari_doubledip.core.tasks.watermark_candidates`: fits over the
    images filled in under the strokes, the matting model of Dekel et al. with one opacity or with
    the mark's opacity and colour per pixel shared by the K photos; they do not depend on how
    many steps fit in the time) are compared per part of the mark by the edges they leave, and the
    best with the generators' inversion (:func:`pick_per_part`); a part whose shared
    outline did not weaken, or an image whose own edge along it did not, gets the input back
    (:func:`keep_removals`).

    Parameters
    ----------
    images
        K >= 2 images sharing one watermark (sizes may differ by up to ``max_size_difference``
        pixels; they are aligned by their centres), or one image with a ``hint``.
    hint
        Optional ``(Y, X)`` array (the first image's size or the common size), nonzero where the
        watermark may be (a box or a rough mask); the mask is zero elsewhere. Required when K = 1.
    options, **kwargs
        :class:`~napari_doubledip.registry.watermark.WatermarkOptions`, as an object and/or keywords (its
        docstring explains each option, and the measurements behind the defaults).
    The mark's support (``support``, ``support_margin``, ``support_low``): see
        :func:`~napari_doubledip.core.priors.watermark.estimate_support`.
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
        images, self.shapes = self._images_and_shapes(images, hint)
        units, self.layouts = to_unit_jointly(images)
        self.align = self._pick_anchor(units) if o.align == "auto" else o.align
        self.common, self.crops = centre_crops(self.shapes, o.max_size_difference, self.align)
        # the K images on their common area, stacked once: (K, C, Y, X)
        self.units = np.stack([u[:, ys, xs] for u, (ys, xs) in zip(units, self.crops, strict=True)])
        _refuse_duplicates(self.units)
        self.full_units = units
        self.k = len(images)
        self.channels = self.layouts[0].channels
        self.inputs = [np.asarray(img) for img in images]
        self.hint = hint_region(hint, self.shapes, self.common, self.crops[0])
        # estimated from the K images (no hint) on first use: in ``setup``, on the run's thread
        # (1-4 s at 1024², and the widget builds the task off the GUI thread but may still call this)
        self._support: tuple[np.ndarray, np.ndarray] | None = None
        self._wants_support = self.hint is None and o.support and self.k >= 2
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

    @staticmethod
    def _images_and_shapes(
        images: list[np.ndarray] | np.ndarray, hint: Any
    ) -> tuple[list[np.ndarray], list[tuple[int, ...]]]:
        """The images as a list and their shapes; raises for too few, and for shapes that do not go together."""
        images = [images] if isinstance(images, np.ndarray) else list(images)
        if not images:
            raise ValueError(
                "remove_watermark needs K >= 2 images sharing a watermark, or one image and a hint"
            )
        if len(images) < 2 and hint is None:
            raise ValueError(
                "one image alone does not show which part is the watermark: give K >= 2 images that "
                "share it, or a hint ((Y, X) array, nonzero where the watermark may be)"
            )
        shapes = [tuple(np.shape(img)) for img in images]
        for i, s in enumerate(shapes):
            if len(s) not in (2, 3):
                raise ValueError(f"images[{i}] has shape {s}; expected (Y, X) or (Y, X, C)")
        if len({len(s) for s in shapes}) > 1 or len({s[2:] for s in shapes}) > 1:
            raise ValueError(f"images must all have the same number of channels, got shapes {shapes}")
        return images, shapes

    @classmethod
    def check_inputs(cls, images: Any, *others: Any, options: Any) -> None:
        """The images (count, shapes, sizes, each an image) and the hint, without converting anything.

        With ``align="auto"`` the hint is checked on the centred common area (the anchor is
        picked from the images' contents, when the task is built).
        """
        hint = others[0] if others else None
        images, shapes = cls._images_and_shapes(images, hint)
        for i, image in enumerate(images):
            check_image(image, name=f"images[{i}]")
        anchor = "centre" if options.align == "auto" else options.align
        common, crops = centre_crops(shapes, options.max_size_difference, anchor)
        hint_region(hint, shapes, common, crops[0])

    def _estimate_support(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The mark's support and outline (``None``: a hint, one image or ``support=False``), once.

        With them, the guesses at what lies under the mark that do not depend on the steps run:
        each image filled in (biharmonic) over the outline's strokes (``fill`` over
        ``fill_area``, which includes the patches of the support where all K images have the
        same colour: an opaque mark, ``opaque``), and under such a patch, filled in over just
        the patch and its 1-px rim (``opaque_fill`` over ``rim``: nearer than the fill over the
        widened strokes). Seconds at 1024², so not in the constructor: :meth:`setup` calls it.
        """
        if self._support is None and self._wants_support:
            from scipy import ndimage

            o = self.opts
            support, outline = estimate_support(
                self.units, low=o.support_low, margin=o.support_margin, any_colour=True
            )
            self.opaque = opaque_area(self.units, support)
            self.fill_area = fill_area(outline, support) | self.opaque
            self.fill = fill_under(self.units, self.fill_area)
            self.rim = ndimage.binary_dilation(self.opaque, iterations=1)
            self.opaque_fill = fill_under(self.units, self.rim) if self.rim.any() else self.fill
            self._support = support, outline
        return self._support

    @property
    def support(self) -> np.ndarray | None:
        """Where the watermark may be, estimated from the K images (``None``: not estimated)."""
        found = self._estimate_support()
        return None if found is None else found[0]

    @property
    def outline(self) -> np.ndarray | None:
        """The strokes of the estimated support (``None``: not estimated)."""
        found = self._estimate_support()
        return None if found is None else found[1]

    def _pick_anchor(self, units: list[np.ndarray]) -> str:
        """``align="auto"``: the anchor where the K images share the most edge (centre on a tie)."""
        centre_crops(self.shapes, self.opts.max_size_difference)  # sizes too different: say so first
        if len(units) < 2 or len({s[:2] for s in self.shapes}) == 1:
            return "centre"  # one image, or equal sizes: every anchor is the same
        best, evidence = "centre", -1.0
        for anchor in ANCHORS:
            _, crops = centre_crops(self.shapes, self.opts.max_size_difference, anchor)
            stack = np.stack([u[:, ys, xs] for u, (ys, xs) in zip(units, crops, strict=True)])
            score = alignment_evidence(stack)
            if score > evidence:
                best, evidence = anchor, score
        return best

    def _data_opacity(self, fallback: float = 0.1) -> float:
        """``mask_init=0``: the median opacity fitted over the images filled in under the strokes.

        :func:`refine_opacity` with :func:`fill_under`'s images (1 on :func:`opaque_area`),
        within 0.05..0.9; ``fallback`` when the images gave no support.
        """
        if self.support is None or not self.fill_area.any():
            return fallback
        area = self.fill_area.astype(np.float32)
        alpha = refine_opacity(self.units, self.fill, area, self.initial_colour)
        alpha = np.where(self.opaque, 1.0, alpha)[self.fill_area]  # all K images alike: opaque
        alpha = alpha[alpha > 0.02]
        return float(np.clip(np.median(alpha), 0.05, 0.9)) if alpha.size else fallback

    def setup(self, ctx: RunContext) -> None:
        """Build the clean generators, the mask generator (starting at ``mask_init``), the hint region and the colour."""
        self.ctx = ctx
        self._estimate_support()  # on the run's thread (the widget's worker), not in the constructor
        multiple = max(self.net_config.size_multiple, self.mask_config.size_multiple)
        self.padded = [PaddedImage(u, multiple, ctx.device) for u in self.units]
        self.target = torch.cat([p.tensor for p in self.padded], dim=0)  # (K, C, Yp, Xp)
        self.valid = self.padded[0].valid
        shape = self.padded[0].padded_shape
        self.clean_nets = self.build_net(self.net_config, self.channels, self.k, ctx, salt=1)
        self.mask_net = self.build_net(self.mask_config, 1, 1, ctx, salt=2)
        self.start_opacity = self.opts.mask_init or self._data_opacity()
        if self.start_opacity != 0.5:  # start from a faint mask: it grows where the data needs it
            self.mask_net.init_output(self.start_opacity)
        o = self.opts
        self.z = NoiseInput(ctx, self.k * self.net_config.input_depth, shape, o.input_std, o.reg_noise)
        self.zm = NoiseInput(ctx, self.mask_config.input_depth, shape, o.input_std, o.reg_noise)
        self.region: torch.Tensor | None = None
        area = self.hint if self.hint is not None else self.support
        if area is not None:
            region = self.padded[0].pad(area.astype(np.float32), mode="constant")
            self.region = torch.from_numpy(region)[None, None].to(ctx.device)
        # a colour at 0 or 1 has an infinite logit: start the learned colour just inside
        start = torch.as_tensor(self.initial_colour, dtype=torch.float32).clamp(
            COLOUR_MARGIN, 1 - COLOUR_MARGIN
        )
        logit = torch.logit(start)
        self.colour_logit = torch.nn.Parameter(logit.to(ctx.device), requires_grad=self.learn_colour)
        self.fixed_colour = torch.as_tensor(self.initial_colour, dtype=torch.float32, device=ctx.device)
        self.exclusion = ExclusionLoss(3)
        self.pairs = list(combinations(range(self.k), 2))

    def generators(self) -> list[tuple[Any, int]]:
        """The nets :meth:`setup` builds, for the memory estimate: ``(config, count)``."""
        return [(self.net_config, self.k), (self.mask_config, 1)]

    def param_groups(self) -> list[dict[str, Any]]:
        """The clean generators at ``lr``, the mask at ``lr / mask_lr_factor``, the colour (when learned) at ``lr``."""
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
        """The K clean images, the mask (inside the hint) and the watermark's colour."""
        clean = self.clean_nets(self.z.sample())[0]  # (K, C, Yp, Xp)
        mask = self.mask_net(self.zm.sample())[0]  # (1, 1, Yp, Xp)
        if self.region is not None:
            mask = mask * self.region
        return {"clean": clean, "mask": mask, "colour": self._colour()}

    def loss(self, out: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Reconstruction of every image through the overlay, exclusion between pairs, mask sparsity."""
        clean, mask = out["clean"].float(), out["mask"].float()
        colour = out["colour"].float().view(1, -1, 1, 1)
        data = weighted_mse(blend(mask, colour, clean), self.target, self.valid.expand(self.k, -1, -1, -1))
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

    def outputs(self, out: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """The cleaned images (mask cleaned up, opacity re-fitted, overlay inverted), the watermark and its mask."""
        padded, o = self.padded[0], self.opts
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
        cleaned = np.stack(self._invert(clean, mask, colour))
        colours = np.broadcast_to(colour[:, None, None], (len(colour), *mask.shape))
        support, outline = self.support, self.outline
        if support is not None and outline is not None and self.fill_area.any():
            cleaned, mask, colours = self._pick_candidates(cleaned, mask, colour)
            # a white mark's chroma undone as each photo took it (JPEG: blurred; or not at all)
            cleaned, self.chroma_choices = refine_chroma(
                self.units, cleaned, mask, colours, support, opaque_from=o.opaque_from
            )
            # the inversion amplified the images' (JPEG's) noise by 1 / (1 - m): smoothed there
            cleaned = smooth_inverted(cleaned, mask, o.inversion_denoise, opaque_from=o.opaque_from)
        changed = np.broadcast_to(mask > 0, cleaned.shape[:1] + mask.shape)
        if support is not None and outline is not None:
            cleaned, changed = keep_removals(self.units, cleaned, support, outline, changed)
        result: dict[str, np.ndarray] = {}
        for k, (unit, crop, layout) in enumerate(zip(cleaned, self.crops, self.layouts, strict=True)):
            full = self.full_units[k].copy()
            full[:, crop[0], crop[1]] = unit
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
        result["watermark"] = from_unit(mask[None] * colours, wm_layout)
        result["mask"] = mask.astype(np.float32)
        result["mark"] = self._mark(mask, colours)
        self._colour_out = colour.astype(np.float64)  # for the result (not a stream output)
        return result

    def _mark(self, mask: np.ndarray, colour: np.ndarray) -> np.ndarray:
        """The mark as found, to look at: ``(Y, X, 4)`` RGBA on the first image's frame, alpha = opacity."""
        rgba = np.zeros((*self.shapes[0][:2], 4), np.float32)
        rgb = np.clip(colour, 0.0, 1.0)[:3] if len(colour) >= 3 else np.repeat(colour[:1], 3, 0)
        ys, xs = self.crops[0]
        rgba[ys, xs, :3] = np.moveaxis(rgb, 0, -1)
        rgba[ys, xs, 3] = np.clip(mask, 0.0, 1.0)
        return rgba

    def result(
        self, outputs: dict[str, np.ndarray], history: dict[str, np.ndarray], params: dict[str, Any]
    ) -> WatermarkResult:
        """The :class:`WatermarkResult`."""
        images = [outputs[f"clean_{k}"] for k in range(self.k)]
        colour = np.array(self._colour_out)
        offsets = [(c[0].start, c[1].start) for c in self.crops]
        params = {
            **params,
            "colour_unit": colour.tolist(),
            "offsets": offsets,
            "aligned_by": self.align,
            "start_opacity": self.start_opacity,
        }
        return WatermarkResult(
            history=history,
            params=params,
            images=images,
            watermark=outputs["watermark"],
            mask=outputs["mask"],
            mark=outputs["mark"],
            offsets=offsets,
            colour=colour,
        )

    def options(self) -> dict[str, Any]:
        """The recorded options, with the images' count, shapes and the hint's size."""
        return {
            **super().options(),
            "n_images": self.k,
            "watermark": self.watermark_spec,
            "hint": None if self.hint is None else {"pixels": int(self.hint.sum())},
            "common_shape": list(self.common),
            "input_shapes": [list(s) for s in self.shapes],
        }
