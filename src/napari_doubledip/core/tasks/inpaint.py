"""DIP inpainting: fit the generator on the known pixels; it fills the missing ones."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ...registry.inpaint import InpaintOptions
from ..conversion import ImageLayout, check_image, check_mask, from_unit, shape_layout, to_unit
from ..fill_folds import (
    POLYHARMONIC_ORDERS,
    all_fill_candidates,
    cross_validated_fill_weights,
    polyharmonic_candidates,
)
from ..guides import biharmonic_guide, blend_fills, fill_candidates, fit_fill_weights
from .reconstruction import ImageReconstructionTask

__all__ = ["InpaintTask", "missing_pixels"]


def missing_pixels(mask: Any, layout: ImageLayout) -> np.ndarray:
    """The ``(Y, X)`` bool missing pixels of ``mask`` (nonzero = missing) for an image of ``layout``.

    Raises
    ------
    ValueError
        For a mask of another size, one with NaN or infinite values, and one that marks no
        pixel or every pixel.
    """
    missing = check_mask(mask, layout, name="mask")
    n_missing = int(np.count_nonzero(missing))
    if n_missing == 0:
        raise ValueError("mask marks no pixel as missing: nothing to inpaint (nonzero = missing)")
    if n_missing == missing.size:
        raise ValueError("mask marks every pixel as missing: there is nothing known to fit")
    return missing


def _plain(weights: np.ndarray) -> bool:
    """Whether fill weights are biharmonic filling's alone."""
    return bool(weights[0] == 1.0 and not weights[1:].any())


class InpaintTask(ImageReconstructionTask):
    """Fill the missing pixels of one image with a Deep Image Prior.

    Parameters
    ----------
    image
        The image (values under the mask are ignored).
    mask
        ``(Y, X)`` array, nonzero/True where a pixel is missing.
    options, **kwargs
        :class:`~napari_doubledip.registry.inpaint.InpaintOptions`: those of
        :class:`ImageReconstructionTask` and ``keep_known`` (return the input's own values at
        known pixels, the generator's only where missing).
    """

    name = "inpaint"
    default_steps = 3000
    options_class = InpaintOptions
    guides = ("refined", "biharmonic")
    guide_as_input = False
    # without noise there is little to over-fit: held-out error keeps falling slowly for long
    held_out_patience = 400
    # the generator builds the image from noise: it needs more than a thousand steps to pass
    # biharmonic filling where it can (80% missing, 128^2: from about step 700, BENCHMARKS.md)
    held_out_first_patience = 3000

    def __init__(
        self, image: np.ndarray, mask: np.ndarray, *, options: InpaintOptions | None = None, **kwargs: Any
    ) -> None:
        super().__init__(image, options=options, **kwargs)
        self.original = np.asarray(image)  # known pixels come back exactly as given (never written to)
        self.missing = missing_pixels(mask, self.layout)
        # the value range comes from the known pixels: what lies under the mask is arbitrary
        self.unit, self.layout = to_unit(image, range_from=~self.missing)
        self.fill_weights: np.ndarray | None = None
        self.fill_fold_score: float | None = None
        #: Whether Stop or the time budget left out part of the fill (biharmonic filling alone then)
        self.setup_cut = False

    @classmethod
    def check_inputs(cls, image: Any, *others: Any, options: Any) -> None:
        """The image and the guide option, and the mask: the image's size, some pixels missing, some known."""
        super().check_inputs(image, options=options)
        mask = others[0] if others else None
        missing_pixels(mask, shape_layout(check_image(image)))

    def fitted_pixels(self) -> np.ndarray:
        """The known pixels."""
        return ~self.missing

    def compute_guide(self, unit: np.ndarray, unseen: np.ndarray) -> np.ndarray:
        """The filling of the ``unseen`` (missing and held-out) pixels.

        ``"biharmonic"``: biharmonic filling. ``"refined"`` (the default): biharmonic filling
        and its non-local-means refinements blended by weights fitted on the held-out known
        pixels (on the first call, where they are unseen; reused for the returned image). Where
        those few pixels do not confirm the blend, it is judged again by cross-validation over
        all the other known pixels (:func:`~napari_doubledip.core.fill_folds.cross_validated_fill_weights`,
        the held-out pixels still unseen), with harmonic and triharmonic filling as two more
        candidates, and biharmonic filling alone comes back where that does not confirm it either.
        Refinements the run's time budget has no room for, or that Stop interrupts, are left out
        (:func:`~napari_doubledip.core.guides.fill_candidates`).
        """
        if self.guide_name == "biharmonic":
            return biharmonic_guide(unit, unseen)
        budget = self.ctx.budget
        if self.fill_weights is None:
            held = unseen & ~self.missing
            # the refinements must leave time to be made again for the returned image's fill
            candidates = fill_candidates(unit, unseen, budget=budget, again=bool(held.any()))
            self._note_cut(candidates)
            self.fill_weights = np.concatenate(
                [fit_fill_weights(candidates, unit, held, self.ctx.seed), np.zeros(len(POLYHARMONIC_ORDERS))]
            )
            if _plain(self.fill_weights) and not self.setup_cut:
                self.fill_weights, self.fill_fold_score = cross_validated_fill_weights(
                    unit, unseen, self.ctx.seed, budget=budget
                )
                if self.fill_fold_score is None:
                    self.setup_cut = True
            peer = candidates[0]
            assert peer is not None  # biharmonic filling is always computed
            # the polyharmonic fills the weights use (the folds computed them on tiles only)
            candidates = [
                *candidates,
                *polyharmonic_candidates(unit, unseen, self.fill_weights[4:] != 0, peer),
            ]
            if held.any() and self.fill_fold_score is not None and not _plain(self.fill_weights):
                # only the folds could confirm the blend: the held-out pixels are too few to also
                # confirm the generator against it, so it must beat biharmonic filling (the peer)
                # significantly, then the blend by its held-out error. Where the held-out pixels
                # confirmed the blend themselves, the generator must beat the blend (camera 50%,
                # 128^2: the looser rule took an output 0.19 dB under the blend)
                self._peer_held_errors = self._held_out_errors(self._padded(peer))
        else:  # the returned image: only the candidates the weights use
            candidates = all_fill_candidates(unit, unseen, needed=self.fill_weights != 0, budget=budget)
            if self._note_cut(candidates, self.fill_weights != 0):
                # Stop (or the deadline) came first: biharmonic filling from all known pixels
                self.fill_weights = np.eye(len(candidates))[0]
        return blend_fills(candidates, self.fill_weights)

    def _note_cut(self, candidates: list[np.ndarray | None], needed: np.ndarray | None = None) -> bool:
        """Whether the budget left out a fill candidate that was ``needed`` (``None``: all); noted."""
        cut = any(c is None and (needed is None or needed[i]) for i, c in enumerate(candidates))
        self.setup_cut = self.setup_cut or cut
        return cut

    def outputs(self, out: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """The filled image; with ``keep_known`` the known pixels are the input's own, exactly."""
        if not self.opts.keep_known:
            return super().outputs(out)
        filled = from_unit(self.image.to_numpy(self.final_image(out))[0], self.layout)
        missing = self.missing if filled.ndim == 2 else self.missing[..., None]
        return {"image": np.where(missing, filled, self.original)}

    def options(self) -> dict[str, Any]:
        """The recorded settings and the share of missing pixels."""
        return {
            **super().options(),
            "missing_fraction": float(self.missing.mean()),
            **(
                {"fill_weights": [round(float(w), 4) for w in self.fill_weights]}
                if self.fill_weights is not None
                else {}
            ),
            **(
                {"fill_fold_score": round(self.fill_fold_score, 2)}
                if self.fill_fold_score is not None
                else {}
            ),
            **({"setup_cut": "fill refinements left out (stop or time budget)"} if self.setup_cut else {}),
        }
