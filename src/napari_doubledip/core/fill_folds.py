"""Cross-validated weights of the inpainting fill candidates, judged on every known pixel.

The run's held-out pixels (5% of the known ones) are too few to confirm a blend of fills that is a
few percent better than biharmonic filling: at 80% missing on a 128^2 image they are 149 pixels,
and a 0.25 dB gain (6% less squared error) reads there as about one standard error. Here the known
pixels are split into :data:`FILL_FOLDS` folds; each fold is filled (biharmonic filling, its
refinements, :func:`~napari_doubledip.core.guides.fill_candidates`, and harmonic and triharmonic
filling, :func:`polyharmonic_candidates`) from the other folds' pixels,
so every known pixel gets a prediction from fills that never saw it. The blend weights (non-negative
least squares) are judged on each fold with weights fitted on the others, by a paired one-sided test
per pixel against biharmonic filling; where it is not significant the weights stay biharmonic's.
Large images are judged on a few random tiles (:data:`FOLD_TILE`), so the cost is bounded.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from .guides import fill_candidates
from .parallel import run_in_threads
from .polyharmonic import polyharmonic_fill

if TYPE_CHECKING:
    from .budget import TimeBudget

__all__ = [
    "FILL_FOLDS",
    "all_fill_candidates",
    "cross_validated_fill_weights",
    "out_of_fold_fills",
    "polyharmonic_candidates",
]

#: Folds of the known pixels: each fill sees (FILL_FOLDS - 1) / FILL_FOLDS of them, near the
#: density of the real fill (80% missing: 16% known instead of 20%).
FILL_FOLDS = 5
#: Orders of the polyharmonic fills (:func:`~napari_doubledip.core.polyharmonic.polyharmonic_fill`)
#: that follow the four candidates of :func:`~napari_doubledip.core.guides.fill_candidates`:
#: harmonic and triharmonic filling, which blended with biharmonic filling fit the spectrum of
#: smooth images that biharmonic filling alone beats every refinement on (retina, tissue).
POLYHARMONIC_ORDERS = (1, 3)
#: Distance (pixels) from the nearest known pixel beyond which the polyharmonic candidates are
#: biharmonic filling itself (see :func:`polyharmonic_candidates`). The folds' held-out pixels lie
#: within it: at 80% missing, one fold out, 99.9% of them are within 4 px of a known pixel.
POLYHARMONIC_REACH = 4.0
#: Candidates used by the folds (biharmonic filling, the first and last refinements of
#: :data:`~napari_doubledip.core.guides.FILL_REFINEMENTS`, the middle one never got a
#: non-negative weight on the benchmark's photos and costs 10 of the 35 filter passes; then the
#: polyharmonic fills).
FOLD_CANDIDATES = (True, True, False, True, True, True)


def all_fill_candidates(
    unit: np.ndarray, unseen: np.ndarray, needed: np.ndarray | None = None, budget: TimeBudget | None = None
) -> list[np.ndarray | None]:
    """The fills of :func:`~napari_doubledip.core.guides.fill_candidates` and the polyharmonic ones.

    Parameters
    ----------
    unit
        ``(C, Y, X)`` image in unit range.
    unseen
        ``(Y, X)`` booleans, True where a pixel must be filled.
    needed
        Which of the ``4 + len(POLYHARMONIC_ORDERS)`` candidates to compute (``None``: all;
        biharmonic filling, the first, is always computed); the others are ``None``.
    budget
        Stop flag and deadline: fills they leave no room for are ``None`` too
        (:func:`~napari_doubledip.core.guides.fill_candidates`; the polyharmonic ones after Stop
        or the deadline).

    Returns
    -------
    list
        ``(C, Y, X)`` fills (or ``None``), biharmonic filling first.
    """
    needed = np.ones(4 + len(POLYHARMONIC_ORDERS), bool) if needed is None else np.asarray(needed, bool)
    first = fill_candidates(unit, unseen, needed=needed[:4], budget=budget)
    assert first[0] is not None  # biharmonic filling is always computed
    if budget is not None and not budget.allows(0.0):
        return [*first, *([None] * len(POLYHARMONIC_ORDERS))]
    return [*first, *polyharmonic_candidates(unit, unseen, needed[4:], first[0])]


def polyharmonic_candidates(
    unit: np.ndarray, unseen: np.ndarray, needed: np.ndarray, biharmonic: np.ndarray
) -> list[np.ndarray | None]:
    """The polyharmonic fills of :data:`POLYHARMONIC_ORDERS` that ``needed`` asks for (the others ``None``).

    ``biharmonic``: biharmonic filling of the same pixels, which holds the tiles' borders on
    large images (:func:`~napari_doubledip.core.polyharmonic.polyharmonic_fill`) and replaces
    the fills over :data:`POLYHARMONIC_REACH` pixels from the nearest known one: the folds judge
    the fills on scattered pixels, near known ones, and cannot vouch for them inside large holes,
    where order 3 overshoots (an 80 x 100 hole in a 512^2 tissue photo: 6.5 dB under biharmonic).
    """
    if not np.any(needed):
        return [None] * len(POLYHARMONIC_ORDERS)
    far = ndimage.distance_transform_edt(unseen) > POLYHARMONIC_REACH

    def fill(order: int) -> np.ndarray:
        out = polyharmonic_fill(unit, unseen, order, border=biharmonic)
        out[:, far] = biharmonic[:, far]
        return out

    return run_in_threads(
        [partial(fill, order) if needed[i] else None for i, order in enumerate(POLYHARMONIC_ORDERS)]
    )


#: Images over ``FOLD_TILES`` tiles of ``FOLD_TILE`` pixels a side are judged on that many random
#: tiles: at 128^2 the test already reads 5-10 standard errors where the blend gains 0.25-0.6 dB.
FOLD_TILE = 128
FOLD_TILES = 2
#: Standard errors the cross-fitted blend must beat biharmonic filling by (one-sided, about 98%).
FOLD_CONFIDENCE_Z = 2.0


def _windows(shape: tuple[int, int], seed: int) -> list[tuple[slice, slice]]:
    ny, nx = shape
    if ny * nx <= FOLD_TILES * FOLD_TILE * FOLD_TILE or min(ny, nx) < FOLD_TILE:
        return [(slice(0, ny), slice(0, nx))]
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x7113])
    ys = rng.integers(0, ny - FOLD_TILE + 1, FOLD_TILES)
    xs = rng.integers(0, nx - FOLD_TILE + 1, FOLD_TILES)
    return [(slice(int(y), int(y) + FOLD_TILE), slice(int(x), int(x) + FOLD_TILE)) for y, x in zip(ys, xs)]


def out_of_fold_fills(
    unit: np.ndarray,
    missing: np.ndarray,
    seed: int,
    folds: int = FILL_FOLDS,
    budget: TimeBudget | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Each known pixel's value as predicted by fills that did not see it.

    Parameters
    ----------
    unit
        ``(C, Y, X)`` image in unit range.
    missing
        ``(Y, X)`` booleans, True where a pixel is missing.
    seed
        Seed of the folds and tiles.
    folds
        Number of folds.
    budget
        Stop flag and deadline: ``None`` comes back when a fill was left out for them.

    Returns
    -------
    design, target, group
        ``(N, K)`` predictions of the ``K`` used candidates (biharmonic filling first) at the
        ``N`` known values judged (pixels times channels, pixel-major), their ``(N,)`` true values
        and ``(N // C,)`` fold of each pixel (numbered per tile, so tiles never share a fold).
    """
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0xF01D])
    designs, targets, groups = [], [], []
    for t, (wy, wx) in enumerate(_windows(missing.shape, seed)):
        tile, lost = unit[:, wy, wx], missing[wy, wx]
        known = ~lost
        fold = np.where(known, rng.integers(0, folds, lost.shape), -1)
        preds = np.zeros((sum(FOLD_CANDIDATES), *tile.shape), np.float32)
        for k in range(folds):
            unseen = lost | (fold == k)
            if unseen.all() or not (fold == k).any():
                continue
            fills = all_fill_candidates(tile, unseen, needed=np.array(FOLD_CANDIDATES), budget=budget)
            used = [c for c, want in zip(fills, FOLD_CANDIDATES, strict=True) if want and c is not None]
            if len(used) < sum(FOLD_CANDIDATES):  # left out for the budget
                return None
            for i, c in enumerate(used):
                preds[i][:, fold == k] = c[:, fold == k]
        # pixel-major rows: the channels of one pixel are adjacent
        designs.append(np.moveaxis(preds[:, :, known], 0, -1).transpose(1, 0, 2).reshape(-1, len(preds)))
        targets.append(tile[:, known].T.ravel())
        groups.append(fold[known] + t * folds)
    return (
        np.concatenate(designs).astype(np.float64),
        np.concatenate(targets).astype(np.float64),
        np.concatenate(groups),
    )


def cross_validated_fill_weights(
    unit: np.ndarray,
    missing: np.ndarray,
    seed: int,
    z: float = FOLD_CONFIDENCE_Z,
    budget: TimeBudget | None = None,
) -> tuple[np.ndarray, float | None]:
    """Weights of the fill candidates, confirmed on every known pixel by cross-validation.

    Parameters
    ----------
    unit
        ``(C, Y, X)`` image in unit range.
    missing
        ``(Y, X)`` booleans, True where a pixel is missing.
    seed
        Seed of the folds and tiles.
    z
        Standard errors (of the mean paired difference per pixel) the blend must gain by.
    budget
        Stop flag and deadline: where they cut the folds' fills short, nothing is confirmed.

    Returns
    -------
    weights, score
        Non-negative weights of the candidates of :func:`all_fill_candidates` (biharmonic
        filling's alone, ``[1, 0, ...]``, unless the test confirms the blend), and the test's statistic: the
        mean paired difference of squared errors over its standard error (negative: the blend
        is better; ``None`` when the budget cut the test short).
    """
    from scipy.optimize import nnls

    plain = np.zeros(len(FOLD_CANDIDATES))
    plain[0] = 1.0
    fills = out_of_fold_fills(unit, missing, seed, budget=budget)
    if fills is None:
        return plain, None
    design, target, group = fills
    channels = unit.shape[0]
    rows = np.repeat(group, channels)
    crossed = np.zeros_like(target)
    for g in np.unique(group):
        inside = rows == g
        if inside.all():
            return plain, 0.0
        w = nnls(design[~inside], target[~inside])[0]
        crossed[inside] = design[inside] @ w
    diff = ((crossed - target) ** 2 - (design[:, 0] - target) ** 2).reshape(-1, channels).sum(axis=1)
    if diff.size < 8:
        return plain, 0.0
    spread = diff.std() / np.sqrt(diff.size)
    score = float(diff.mean() / spread) if spread > 0 else 0.0
    if score > -z:
        return plain, score
    weights = plain * 0
    weights[np.array(FOLD_CANDIDATES)] = nnls(design, target)[0]
    return weights, score
