"""Judging a segmentation without ground truth: the run's mask against the mask it started from.

The reconstruction tasks keep the generator's output only where held-out pixels confirm it
beats their classical start. A segmentation has no held-out truth, but it has an energy:
GrabCut's (Rother et al. 2004), a per-pixel data term (the log-likelihood ratio of two
colour/texture mixtures) and a contrast-sensitive Potts term over the 8 neighbours. The
mixtures are fitted once, to the start mask and the user's hints (painted pixels, and a box's
outside, weigh :data:`~.segmentation.PAINTED_WEIGHT`), so that they describe what the hints and
the start say the two sides look like. Where the run's mask differs from the start, each
connected region of difference is judged on its own (regions do not touch, so their energy
changes add up): the run's labels are kept in a region only when they lower the energy there by
more than :data:`JUDGE_MARGIN` per pixel; everywhere else the start comes back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .graphcut import GAMMA, pair_weights

__all__ = ["JUDGE_MARGIN", "MaskJudge", "MaskChoice"]

#: A region of the run's mask replaces the start only if it lowers the energy by more than this
#: per pixel of the region (in the data term's units: nats of the mixtures' likelihood ratio).
JUDGE_MARGIN = 0.1


@dataclass(frozen=True)
class MaskChoice:
    """What :meth:`MaskJudge.choose` returned and why.

    Attributes
    ----------
    source
        ``"start"`` (the run's mask differed nowhere, or lost every region: the start comes
        back), ``"run"`` (the run's mask, every differing region lowered the energy) or
        ``"mixed"`` (some regions from the run, the others from the start).
    regions, regions_from_run
        Connected regions where the run's mask differs from the start, and how many of them
        were taken from the run.
    pixels_changed, pixels_from_run
        Pixels where the run's mask differs from the start, and how many of them were taken.
    energy_start, energy_run, energy_returned
        The energy of the start mask, the run's mask and the returned mask (lower is better).
    """

    source: str
    regions: int
    regions_from_run: int
    pixels_changed: int
    pixels_from_run: int
    energy_start: float
    energy_run: float
    energy_returned: float

    def record(self) -> dict[str, Any]:
        """JSON-friendly fields, for the run's ``params``."""
        return {
            "source": self.source,
            "regions": self.regions,
            "regions_from_run": self.regions_from_run,
            "pixels_changed": self.pixels_changed,
            "pixels_from_run": self.pixels_from_run,
            "energy_start": round(self.energy_start, 3),
            "energy_run": round(self.energy_run, 3),
            "energy_returned": round(self.energy_returned, 3),
        }


class MaskJudge:
    """GrabCut's energy of a mask, with mixtures fitted once to a start mask and the hints.

    Parameters
    ----------
    unit
        ``(C, Y, X)`` image in unit range.
    start
        bool ``(Y, X)``: the start mask (the prior, thresholded), the default answer.
    fixed
        Optional ``(Y, X)`` labels the returned mask honours (1 foreground, 2 background, 0
        free): the painted strokes and a box's outside. They weigh more in the fit.
    seed
        Seed of the mixtures' initialisation.
    gamma
        Weight of the smoothness term (:data:`~.graphcut.GAMMA`).
    margin
        Energy per pixel a region must gain to be taken from the run (:data:`JUDGE_MARGIN`).
    """

    def __init__(
        self,
        unit: np.ndarray,
        start: np.ndarray,
        fixed: np.ndarray | None = None,
        seed: int = 0,
        gamma: float = GAMMA,
        margin: float = JUDGE_MARGIN,
        fit: str = "start",
    ) -> None:
        from .segmentation import ColourModel, colour_texture_features, first_fit_weights, refit_weights

        self.start = np.asarray(start, bool)
        self.shape = self.start.shape
        self.margin = float(margin)
        if fit == "hints" and fixed is not None:
            weights: tuple[np.ndarray, np.ndarray] | None = first_fit_weights(fixed, self.shape)
        else:
            weights = refit_weights(self.start.astype(np.float64), fixed)
        if weights is None:  # one side (almost) empty: nothing to fit, the data term is silent
            self.log_ratio = np.zeros(self.shape)
        else:
            model = ColourModel(colour_texture_features(unit), components=5, seed=seed)
            self.log_ratio = model.log_ratio(*weights).reshape(self.shape)
        pairs = pair_weights(unit, gamma)
        self.first = np.concatenate([p[0] for p in pairs])
        self.second = np.concatenate([p[1] for p in pairs])
        self.weight = np.concatenate([p[2] for p in pairs])

    def energy(self, mask: np.ndarray) -> float:
        """The energy of a bool ``(Y, X)`` mask: ``-sum(log_ratio[mask]) + sum of cut edges' weights``."""
        flat = np.asarray(mask, bool).ravel()
        cut = flat[self.first] != flat[self.second]
        return float(-self.log_ratio.ravel()[flat].sum() + self.weight[cut].sum())

    def choose(self, run: np.ndarray) -> tuple[np.ndarray, MaskChoice]:
        """The returned bool ``(Y, X)`` mask: the start, with the run's regions that win.

        Parameters
        ----------
        run
            bool ``(Y, X)``: the run's mask (hints already honoured).

        Returns
        -------
        mask, choice
            The returned mask and a :class:`MaskChoice` saying where it came from.
        """
        from scipy import ndimage

        run = np.asarray(run, bool)
        start = self.start
        differ = run != start
        labels, n = ndimage.label(differ, structure=np.ones((3, 3), bool))
        e_start = self.energy(start)
        e_run = self.energy(run) if n else e_start
        if n == 0:
            return start.copy(), MaskChoice("start", 0, 0, 0, 0, e_start, e_run, e_start)
        flat_labels = labels.ravel()
        # data term: a pixel turned foreground gains -log_ratio, one turned background +log_ratio
        turned = np.where(run, -1.0, 1.0).ravel() * self.log_ratio.ravel()
        delta = np.bincount(flat_labels, weights=np.where(differ.ravel(), turned, 0.0), minlength=n + 1)
        # smoothness: an edge touching a region belongs to it (two regions never share an edge)
        s, r = start.ravel(), run.ravel()
        change = self.weight * (
            (r[self.first] != r[self.second]).astype(np.float64) - (s[self.first] != s[self.second])
        )
        owner = np.maximum(flat_labels[self.first], flat_labels[self.second])
        delta += np.bincount(owner, weights=change, minlength=n + 1)
        sizes = np.bincount(flat_labels, minlength=n + 1)
        wins = delta < -self.margin * sizes
        wins[0] = False
        take = wins[labels]
        chosen = np.where(take, run, start)
        k = int(wins.sum())
        source = "start" if k == 0 else ("run" if k == n else "mixed")
        choice = MaskChoice(
            source,
            n,
            k,
            int(differ.sum()),
            int(take.sum()),
            e_start,
            e_run,
            float(e_start + delta[wins].sum()),
        )
        return chosen, choice
