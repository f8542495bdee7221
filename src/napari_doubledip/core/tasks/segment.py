"""Foreground/background segmentation with Double-DIP (two layer generators and a mask generator)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ...registry.segment import SegmentOptions
from ..conversion import check_image, shape_layout, to_unit
from ..formation import blend
from ..losses import (
    ExclusionLoss,
    binarising_loss,
    contrast_weights,
    edge_aware_smoothness,
    labelled_cross_entropy,
    mask_balance_loss,
    soft_cross_entropy,
    sum_of_squares,
)
from ..network import resolve_net_config
from ..priors.judge import MaskChoice, MaskJudge
from ..priors.segmentation import (
    ColourModel,
    box_hints,
    box_prior,
    check_box,
    check_hints,
    edge_as_background,
    first_fit_weights,
    painted_labels,
    pixel_features,
    random_walk_prior,
    refine_prior,
    refit_weights,
    unsupervised_prior,
)
from .base import NoiseInput, PaddedImage, Result, RunContext, Task
from .reconstruction import weighted_mse

__all__ = ["SegmentResult", "SegmentTask"]

#: The prior's probability is kept this far inside (0, 1) for the mask's starting logit.
PRIOR_MARGIN = 0.02
#: Label values of the ``labels`` output: those of the hints, so the output can be painted on and fed back.
FOREGROUND, BACKGROUND = 1, 2


@dataclass(frozen=True)
class SegmentResult(Result):
    """Result of :class:`SegmentTask`.

    Attributes
    ----------
    layers
        ``(foreground, background)`` layers, full-frame, in the input's layout.
    mask
        float32 ``(Y, X)`` in [0, 1], 1 = foreground.
    labels
        uint8 ``(Y, X)``, 1 = foreground, 2 = background (the hints' values: paint on it and
        pass it back as hints).
    background
        The background layer (``layers[1]``): it extends under the foreground, so it is the
        image with the object removed.
    """

    layers: tuple[np.ndarray, np.ndarray] = None  # type: ignore[assignment]
    mask: np.ndarray = None  # type: ignore[assignment]
    labels: np.ndarray = None  # type: ignore[assignment]

    def record(self) -> dict[str, Any]:
        """Where the mask came from (the run, its start or both), for the CLI's sidecar."""
        choice = self.params.get("mask_choice")
        return {} if choice is None else {"mask_choice": choice}

    def summary(self) -> str:
        """Where the mask came from, for the widget's status line."""
        choice = self.params.get("mask_choice")
        if not choice or choice.get("regions", 0) == 0:
            return ""
        if choice["source"] == "start":
            return (
                f" Mask: the start (the run changed {choice['pixels_changed']} pixels, none lowering "
                "the graph-cut energy)."
            )
        return (
            f" Mask: {choice['regions_from_run']} of {choice['regions']} changed regions from the run "
            f"({choice['pixels_from_run']} pixels), the rest from the start."
        )

    @property
    def foreground_mask(self) -> np.ndarray:
        """The foreground as a bool ``(Y, X)`` array (``labels == 1``)."""
        return np.asarray(self.labels) == FOREGROUND

    @property
    def background(self) -> np.ndarray:
        """The background layer with the object removed (``layers[1]``)."""
        return self.layers[1]


class SegmentTask(Task[SegmentOptions]):
    """Split an image into a foreground and a background layer with Double-DIP.

    Model: ``I ≈ m * y_fg + (1 - m) * y_bg`` with two full-frame layer generators (ONE grouped
    :class:`~napari_doubledip.core.network.SkipNet` with ``n_nets=2``) and a small mask
    generator ``m``. Loss terms:

    - ``recon``: masked reconstruction of the image;
    - ``exclusion``: :class:`~napari_doubledip.core.losses.ExclusionLoss` between the layers;
    - ``layer_hints``: each layer alone reconstructs the image on its own hinted pixels;
    - ``hints``: binary cross-entropy of the mask on the hinted pixels (strong supervision);
    - ``prior``: cross-entropy of the mask towards a per-pixel foreground probability: with
      painted foreground and background, a random walk from the hints over colour/texture
      features; otherwise a colour/texture model (Gaussian mixtures) fitted to the hints or to
      the image border (optionally re-fitted every ``refit_every`` steps to the current mask);
    - ``smooth``: contrast-sensitive total variation of the mask (mask edges where image edges are);
    - ``binarise``: mean ``m (1 - m)`` (bounded, zero at 0 and 1), ramped in after ``binarise_start``
      steps so the mask first settles, then becomes near-binary;
    - ``balance``: keeps the mask's mean away from 0 and 1 (no trivial one-layer solution).

    The usual ``(sum |m - 0.5|)^-1`` term is not used: it is unbounded near ``m = 0.5`` and its
    pull grows as the mask saturates, which drove the prototype to a constant mask within ~40
    steps. The mask net learns ``mask_lr_factor`` times slower than the layers.

    Without hints the mask starts at :func:`unsupervised_prior` (the object is taken to lie
    inside the frame: the box prior with the image's border ring as the box's outside; the
    classical split, 2-means on colour/texture refined by a walk, when that finds nothing), and
    at the end the side that covers more of the border is called background. With a ``box``
    everything outside it is background and the mask starts at :func:`box_prior` (GrabCut's
    loop, ending in graph cuts); strokes inside the box make it a random walk again.

    Hints can change while the run goes on: hints put on the ``hint_updates`` queue are taken
    between two steps (:meth:`update_hints`), the seeds and the prior are recomputed, and the
    nets go on from their current state.

    Parameters
    ----------
    image
        2-D gray or ``(Y, X, C)`` image.
    hints
        Optional ``(Y, X)`` labels: 0 unknown, 1 foreground, 2 background (``labels`` of a
        result can be passed back, after painting on it).
    options, **kwargs
        :class:`~napari_doubledip.registry.segment.SegmentOptions`, as an object and/or keywords (its
        docstring explains each option, and the measurements behind the defaults).
    """

    name = "segment"
    default_steps = 600
    monitor_key = None

    def __init__(
        self,
        image: np.ndarray,
        hints: np.ndarray | None = None,
        *,
        options: SegmentOptions | None = None,
        **kwargs: Any,
    ) -> None:
        self.opts = o = SegmentOptions.build(options, **kwargs)
        self.unit, self.layout = to_unit(image)
        if min(self.layout.spatial_shape) < 8:
            raise ValueError(f"image is too small to segment: {self.layout.shape}")
        self.box = None if o.box is None else check_box(o.box, self.layout.spatial_shape)
        self.net_config = resolve_net_config(o.net)
        self.mask_config = resolve_net_config(o.mask_net)
        self.binarise_ramp = max(1, o.binarise_ramp)
        self.hint_updates = o.hint_updates
        self.outputs_changed = False  # set when new hints arrive mid-run (the loop restarts its averages)
        self.judge: MaskJudge | None = None  # built with the prior (setup)
        self.mask_choice: MaskChoice | None = None
        self._derive(None if hints is None else check_hints(hints, self.layout))
        if o.mask_offset is None:
            self.mask_offset = self.prior_method in ("walk", "split", "box")
        else:
            self.mask_offset = bool(o.mask_offset)

    def _derive(self, hints: np.ndarray | None) -> None:
        """The user's hints, the seeds (hints, the box's outside, maybe the frame) and the prior to use."""
        self.hints = hints
        self.edge, self.seeds, self.prior_method = self._seeds_and_prior(
            self.opts, self.box, self.layout.spatial_shape, hints
        )

    @staticmethod
    def _seeds_and_prior(
        o: SegmentOptions,
        box: tuple[int, int, int, int] | None,
        shape: tuple[int, int],
        hints: np.ndarray | None,
    ) -> tuple[str, np.ndarray | None, str]:
        """``(edge, seeds, prior method)`` for checked ``hints`` and ``box``; raises for hints the options cannot use."""
        painted = painted_labels(hints)
        if o.edge == "background" and 1 not in painted:
            raise ValueError(
                "edge='background' needs foreground strokes (label 1) in the hints; without hints "
                "the unsupervised segmentation already takes the image's border as background"
            )
        if o.edge == "auto":
            edge = "background" if painted == {1} and box is None else "free"
        else:
            edge = o.edge
        seeds = hints
        if box is not None:  # outside the box is background; strokes inside it still count
            seeds = box_hints(box, shape, hints)
        if seeds is not None and edge == "background":
            seeds = edge_as_background(seeds)
        painted = painted_labels(seeds)
        if o.prior == "walk" and painted != {1, 2}:
            raise ValueError("prior='walk' needs hints with both foreground (1) and background (2) strokes")
        if o.prior != "auto":
            prior_method = o.prior
        elif painted == {1, 2}:
            prior_method = "walk"
        elif box is not None:
            prior_method = "box"
        else:
            prior_method = "colour" if hints is not None else "split"
        return edge, seeds, prior_method

    @classmethod
    def check_inputs(cls, image: Any, *others: Any, options: Any) -> None:
        """The image, the box and the hints (size, labels, strokes the options need), without converting anything."""
        layout = shape_layout(check_image(image))
        if min(layout.spatial_shape) < 8:
            raise ValueError(f"image is too small to segment: {layout.shape}")
        box = None if options.box is None else check_box(options.box, layout.spatial_shape)
        hints = others[0] if others else None
        checked = None if hints is None else check_hints(hints, layout)
        cls._seeds_and_prior(options, box, layout.spatial_shape, checked)

    # --- set-up -------------------------------------------------------------------------
    def setup(self, ctx: RunContext) -> None:
        """Build the layer and mask generators, the hint maps, the smoothness weights and the prior (random walk or colour model)."""
        self.ctx = ctx
        multiple = max(self.net_config.size_multiple, self.mask_config.size_multiple)
        self.image = PaddedImage(self.unit, multiple, ctx.device)
        self.valid = self.image.valid
        self.layers_net = self.build_net(self.net_config, self.layout.channels, 2, ctx, salt=11)
        mask_config = self.mask_config
        if self.mask_offset:  # the net outputs a logit correction to the prior's
            mask_config = dataclasses.replace(mask_config, need_sigmoid=False)
        self.mask_net = self.build_net(mask_config, 1, 1, ctx, salt=12)
        shape = self.image.padded_shape
        o = self.opts
        self.z = NoiseInput(ctx, 2 * self.net_config.input_depth, shape, o.input_std, o.reg_noise)
        self.zm = NoiseInput(ctx, self.mask_config.input_depth, shape, o.input_std, o.reg_noise)
        self.exclusion = ExclusionLoss(3)
        # contrast-sensitive smoothness weights
        self.edge_x, self.edge_y = contrast_weights(self.image.tensor)
        self.model: ColourModel | None = None
        self._set_seeds()
        self._compute_prior()

    def _set_seeds(self) -> None:
        """The hint maps of the loss (padded with 0: unknown)."""
        hints = np.zeros(self.layout.spatial_shape, np.uint8) if self.seeds is None else self.seeds
        hp = self.image.pad(hints.astype(np.float32), mode="constant")
        device = self.ctx.device
        self.fg_hint = torch.from_numpy((hp == 1).astype(np.float32))[None, None].to(device)
        self.bg_hint = torch.from_numpy((hp == 2).astype(np.float32))[None, None].to(device)
        self.n_hinted = float((hp > 0).sum())

    def _compute_prior(self) -> None:
        """The prior the ``prior`` term pulls towards and the mask starts at (``mask_offset``)."""
        o, seed = self.opts, self.ctx.seed
        # the mixtures only where they are fitted (colour prior, re-fits)
        if self.model is None and (self.prior_method == "colour" or o.refit_every > 0):
            self.model = ColourModel(pixel_features(self.unit), seed=seed)
        if self.prior_method == "walk" and self.seeds is not None:  # (checked: the walk has seeds)
            walk = random_walk_prior(self.unit, self.seeds, o.walk_beta)
            self._set_prior(refine_prior(self.unit, walk, self.seeds, seed) if o.refine else walk)
        elif self.prior_method == "box" and self.box is not None:
            self._set_prior(box_prior(self.unit, self.box, seed))
        elif self.prior_method == "split" or (self.model is None and self.seeds is None):
            self._set_prior(unsupervised_prior(self.unit, seed, o.walk_beta))
        else:
            if self.model is None:
                self.model = ColourModel(pixel_features(self.unit), seed=seed)
            w_fg, w_bg = first_fit_weights(self.seeds, self.layout.spatial_shape)
            self._set_prior(self.model.probability(w_fg, w_bg))
        # the mask's starting point (mask_offset): this prior
        self.prior_logit = torch.logit(self.prior.clamp(PRIOR_MARGIN, 1 - PRIOR_MARGIN))
        # the start the run's mask is judged against (painted pixels and the box's outside honoured)
        self.start_soft = self._honour_hard(self.image.to_numpy(self.prior)[0, 0])
        self.judge, self.mask_choice = None, None
        if o.judge:
            self.judge = MaskJudge(self.unit, self.start_soft > 0.5, self._hard_labels(), seed)

    def update_hints(self, hints: np.ndarray | None) -> None:
        """Take new hints mid-run: new seeds and prior; the nets go on from where they are.

        ``None`` (or hints all 0) removes the hints. Called between steps (:meth:`loss` polls
        ``hint_updates``); invalid hints are ignored with a warning, the run goes on.
        """
        import warnings

        before = (self.hints, self.seeds, self.edge, self.prior_method)
        try:
            if hints is not None and not np.any(np.asarray(hints)):
                hints = None
            checked = None if hints is None else check_hints(hints, self.layout)
            self._derive(checked)
        except ValueError as exc:
            self.hints, self.seeds, self.edge, self.prior_method = before
            warnings.warn(f"hint update ignored: {exc}", UserWarning, stacklevel=2)
            return
        self._set_seeds()
        self._compute_prior()
        self.outputs_changed = True

    def _poll_hints(self) -> None:
        """Apply the newest hints waiting in ``hint_updates`` (a ``queue.Queue``), if any."""
        import queue

        source, latest, found = self.hint_updates, None, False
        if source is None:
            return
        while True:
            try:
                latest, found = source.get_nowait(), True
            except queue.Empty:
                break
        if found:
            self.update_hints(latest)

    def _set_prior(self, p: np.ndarray) -> None:
        prob = self.image.pad(p.reshape(self.layout.spatial_shape).astype(np.float32), mode="symmetric")
        self.prior = torch.from_numpy(prob)[None, None].to(self.ctx.device)

    def _refit(self, mask: torch.Tensor) -> None:
        weights = refit_weights(self.image.to_numpy(mask.detach())[0, 0], self.seeds)
        if self.model is not None and weights is not None:
            self._set_prior(self.model.probability(*weights))

    def generators(self) -> list[tuple[Any, int]]:
        """The nets :meth:`setup` builds, for the memory estimate: ``(config, count)``."""
        return [(self.net_config, 2), (self.mask_config, 1)]

    def param_groups(self) -> list[dict[str, Any]]:
        """The layer generators at ``lr``, the mask generator ``mask_lr_factor`` times that."""
        return [
            {"params": list(self.layers_net.parameters()), "lr": self.opts.lr},
            {"params": list(self.mask_net.parameters()), "lr": self.opts.lr * self.opts.mask_lr_factor},
        ]

    # --- step ---------------------------------------------------------------------------
    def forward(self) -> dict[str, torch.Tensor]:
        """The two layers and the mask (a correction to the prior's logit with ``mask_offset``)."""
        layers = self.layers_net(self.z.sample())  # (1, 2, C, Yp, Xp)
        mask = self.mask_net(self.zm.sample())[:, 0]  # (1, 1, Yp, Xp)
        if self.mask_offset:
            mask = torch.sigmoid(self.prior_logit + mask)
        return {"layers": layers, "mask": mask}

    def loss(self, out: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Blend reconstruction, exclusion, hints, prior, smoothness, binarising and balance terms."""
        o = self.opts
        self._poll_hints()
        if o.refit_every > 0 and step > 0 and step % o.refit_every == 0:
            self._refit(out["mask"])
        fg, bg = out["layers"][:, 0].float(), out["layers"][:, 1].float()
        m = out["mask"].float()
        target = self.image.tensor
        recon = weighted_mse(blend(m, fg, bg), target, self.valid)
        excl = self.exclusion(fg * self.valid, bg * self.valid)
        terms: dict[str, torch.Tensor] = {"recon": recon, "exclusion": excl}
        total = recon + o.exclusion_weight * excl
        if self.n_hinted > 0:
            bce = labelled_cross_entropy(m, self.fg_hint, self.bg_hint, self.n_hinted)
            layer_fit = (
                sum_of_squares(fg, target, self.fg_hint) + sum_of_squares(bg, target, self.bg_hint)
            ) / (self.n_hinted * target.shape[1])
            terms["hints"], terms["layer_hints"] = bce, layer_fit
            total = total + o.hint_weight * (bce + layer_fit)
        p = self.prior
        confidence = (2 * (p - 0.5)).abs() * self.valid
        prior = soft_cross_entropy(m, p, confidence, self.valid.sum())
        smooth = edge_aware_smoothness(m, self.edge_x, self.edge_y)
        ramp = min(1.0, max(0.0, (step - o.binarise_start) / self.binarise_ramp))
        binar = binarising_loss(m, self.valid)
        balance = mask_balance_loss(m, self.valid)
        total = (
            total
            + o.prior_weight * prior
            + o.smooth_weight * smooth
            + ramp * o.binarise_weight * binar
            + o.balance_weight * balance
        )
        terms.update({"prior": prior, "smooth": smooth, "binarise": binar, "balance": balance})
        return total, terms

    # --- outputs ------------------------------------------------------------------------
    def _hard_labels(self) -> np.ndarray | None:
        """The labels every returned mask honours: painted pixels, and a box's outside."""
        if self.box is not None:
            return box_hints(self.box, self.layout.spatial_shape, self.hints)
        return self.hints

    def _honour_hard(self, m: np.ndarray) -> np.ndarray:
        m = np.clip(m, 0.0, 1.0).astype(np.float32)
        hard = self._hard_labels()
        if hard is not None:
            m = np.where(hard == 1, 1.0, np.where(hard == 2, 0.0, m)).astype(np.float32)
        return m

    def _final_mask(self, mask: torch.Tensor) -> np.ndarray:
        """The run's mask with the hints honoured, judged against the start (``judge``)."""
        m = self._honour_hard(self.image.to_numpy(mask)[0, 0])
        if self.judge is None:
            return m
        run = m > 0.5
        chosen, self.mask_choice = self.judge.choose(run)
        # where the start wins, its own soft mask comes back (on its side of 0.5)
        return np.where(chosen == run, m, self.start_soft).astype(np.float32)

    def _swap_needed(self, labels: np.ndarray) -> bool:
        """Unsupervised: the foreground is the side that covers less of the image border."""
        if self.hints is not None or self.box is not None:
            return False
        border = np.concatenate([labels[0], labels[-1], labels[1:-1, 0], labels[1:-1, -1]])
        return bool(border.mean() > 0.5)

    def outputs(self, out: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """Foreground, background, soft mask and labels (painted pixels honoured, sides swapped if needed)."""
        m = self._final_mask(out["mask"])
        layers = out["layers"][0]
        fg = self.image.to_caller(layers[0], self.layout)
        bg = self.image.to_caller(layers[1], self.layout)
        if self._swap_needed((m > 0.5).astype(np.uint8)):
            fg, bg, m = bg, fg, (1.0 - m).astype(np.float32)
        labels = np.where(m > 0.5, FOREGROUND, BACKGROUND).astype(np.uint8)
        return {"foreground": fg, "background": bg, "mask": m, "labels": labels}

    def result(
        self, outputs: dict[str, np.ndarray], history: dict[str, np.ndarray], params: dict[str, Any]
    ) -> SegmentResult:
        """The :class:`SegmentResult`, with the foreground fraction."""
        mask = np.array(outputs["mask"], dtype=np.float32)
        params = {**params, "foreground_fraction": float((outputs["labels"] == FOREGROUND).mean())}
        return SegmentResult(
            history=history,
            params=params,
            layers=(np.array(outputs["foreground"]), np.array(outputs["background"])),
            mask=mask,
            labels=np.array(outputs["labels"], dtype=np.uint8),
        )

    def options(self) -> dict[str, Any]:
        """The recorded options, with the prior, edge rule and hint counts actually used."""
        return {
            **super().options(),
            "prior": self.prior_method,
            "edge": self.edge,
            "mask_offset": self.mask_offset,
            "binarise_ramp": self.binarise_ramp,
            "hinted": self.hints is not None,
            "box": None if self.box is None else list(self.box),
            "n_foreground_hints": 0 if self.hints is None else int((self.hints == 1).sum()),
            "n_background_hints": 0 if self.hints is None else int((self.hints == 2).sum()),
            "binarising_term": "mean m(1-m), ramped in",
            "input_shape": list(self.layout.shape),
            "input_dtype": str(self.layout.dtype),
            "mask_choice": None if self.mask_choice is None else self.mask_choice.record(),
        }
