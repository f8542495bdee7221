"""The start without hints: an object inside the frame, or a classical split the judge prefers.

The object start (:func:`object_prior`) is the box prior inside the image's border ring, or the
classical split refined by a walk when that lies inside it along stronger edges. The classical
splits a user would try first (:func:`classical_candidates`: 2-means on colour/texture and
``chan_vese`` on the grey image, each given the side covering less of the image's frame and
cleaned by graph cuts) are then offered to the judge of the segmentation task
(:class:`~.judge.MaskJudge`: GrabCut's energy, mixtures fitted to the object start): a
candidate replaces the start only if its energy is lower by more than
:data:`~.judge.JUDGE_MARGIN` per pixel of the image (the start must be clearly worse, by the
start's own mixtures, than a split a user could have had in a click).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .graphcut import box_prior, cut_from, mean_boundary_weight
from .judge import JUDGE_MARGIN, MaskJudge
from .segmentation import (
    BORDER_FRACTION,
    MIN_REFIT_WEIGHT,
    _frame,
    pixel_features,
    split_prior,
    two_means,
)

__all__ = [
    "SPLIT_INSIDE",
    "classical_candidates",
    "object_prior",
    "unsupervised_choice",
    "unsupervised_prior",
]

#: Without hints: the split's cut replaces the frame's object only if this much of it lies inside that object.
SPLIT_INSIDE = 0.9


def _ring(shape: tuple[int, int]) -> tuple[int, np.ndarray]:
    """The border ring's width and the ``fixed`` labels (2 on the ring, 0 inside) of a cut."""
    h, w = shape
    ring = max(1, min(h, w) // BORDER_FRACTION)
    fixed = np.full((h, w), 2, np.uint8)
    fixed[ring : h - ring, ring : w - ring] = 0
    return ring, fixed


def object_prior(unit: np.ndarray, seed: int = 0, beta: float = 60.0) -> np.ndarray:
    """Foreground probability ``(Y, X)`` of an object inside the frame.

    Two classical answers, then a choice between them:

    1. the image's border ring (``min(Y, X) / BORDER_FRACTION`` wide) taken as a box drawn
       around the object: the box prior (:func:`~.graphcut.box_prior`: GrabCut's loop, a
       walk, then graph cuts) finds the object inside it;
    2. the classical split (:func:`~.segmentation.split_prior`: 2-means on colour/texture
       refined by a walk), then graph cuts from it with the ring as background
       (:func:`~.graphcut.cut_from`).

    The first is the answer unless the second lies (at least :data:`SPLIT_INSIDE`) inside it
    and its outline runs along stronger image edges (a lower
    :func:`~.graphcut.mean_boundary_weight`): then the first has taken in a part of the
    background that looks like the object (grey cat fur next to a grey moon), and the tighter
    object of the split is returned. When the first finds no foreground, the second.
    """
    h, w = unit.shape[1:]
    ring, fixed = _ring((h, w))
    inner = box_prior(unit, (ring, ring, h - ring, w - ring), seed, beta)
    classical = split_prior(unit, seed, beta)
    split = cut_from(unit, classical > 0.5, fixed, seed)
    frame = inner > 0.5
    if frame.sum() < MIN_REFIT_WEIGHT:
        return split.astype(np.float64) if split.sum() >= MIN_REFIT_WEIGHT else classical
    if (
        split.sum() >= MIN_REFIT_WEIGHT
        and (split & frame).sum() >= SPLIT_INSIDE * split.sum()
        and mean_boundary_weight(unit, split) < mean_boundary_weight(unit, frame)
    ):
        return split.astype(np.float64)
    return inner


def classical_candidates(unit: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """The classical splits a user would try, as bool ``(Y, X)`` masks finished by graph cuts.

    ``"2-means"``: :func:`~.segmentation.two_means` on :func:`~.segmentation.pixel_features`
    (colour, its 5 x 5 local mean and spread); ``"chan_vese"``:
    :func:`skimage.segmentation.chan_vese` on the grey image. Each split's side covering less
    of the image's one-pixel frame is the foreground; graph cuts (:func:`~.graphcut.cut_from`,
    GrabCut's loop with the border ring as background) then clean its ragged outline.
    """
    from skimage.segmentation import chan_vese

    shape = unit.shape[1:]
    _, fixed = _ring(shape)
    if unit.shape[0] == 3:
        from skimage.color import rgb2gray

        grey = rgb2gray(np.moveaxis(unit, 0, -1))
    else:
        grey = unit[0]
    splits = {
        "2-means": two_means(pixel_features(unit), seed).reshape(shape) == 1,
        "chan_vese": np.asarray(chan_vese(grey.astype(np.float64)), bool),
    }
    frame = _frame(shape)
    out = {}
    for name, side in splits.items():
        if side[frame].mean() > 0.5:
            side = ~side
        out[name] = cut_from(unit, side, fixed, seed)
    return out


def unsupervised_choice(
    unit: np.ndarray, seed: int = 0, beta: float = 60.0
) -> tuple[np.ndarray, dict[str, Any]]:
    """The start without hints and where it came from: the object start or a classical split.

    Parameters
    ----------
    unit
        ``(C, Y, X)`` image in unit range.
    seed
        Seed of the mixtures and of 2-means.
    beta
        Edge sharpness of the random walks (skimage's convention).

    Returns
    -------
    prior, record
        The foreground probability ``(Y, X)`` and a JSON-friendly record: ``"chosen"``
        (``"object"``, ``"2-means"`` or ``"chan_vese"``) and each candidate's judged energy per
        pixel (``"energies"``, :meth:`~.judge.MaskJudge.energy` divided by the pixel count,
        mixtures fitted to the object start).
    """
    start = object_prior(unit, seed, beta)
    candidates = classical_candidates(unit, seed)
    judge = MaskJudge(unit, start > 0.5, None, seed)
    size = float(start.size)
    energies = {"object": judge.energy(start > 0.5) / size}
    energies.update({name: judge.energy(mask) / size for name, mask in candidates.items()})
    best = min(candidates, key=lambda name: energies[name])
    chosen = best if energies[best] < energies["object"] - JUDGE_MARGIN else "object"
    record = {"chosen": chosen, "energies": {k: round(v, 4) for k, v in energies.items()}}
    return (start if chosen == "object" else candidates[chosen].astype(np.float64)), record


def unsupervised_prior(unit: np.ndarray, seed: int = 0, beta: float = 60.0) -> np.ndarray:
    """Foreground probability ``(Y, X)`` without hints (the prior of :func:`unsupervised_choice`).

    Measured (128², prior alone, IoU; ``benchmarks/unsupervised_choice.py`` and BENCHMARKS.md):
    the classical split replaced the object start on 1 of 36 composites (immunohistochemistry
    on cat, colours matched: 0.242 -> 0.416, above 2-means' 0.294).
    """
    return unsupervised_choice(unit, seed, beta)[0]
