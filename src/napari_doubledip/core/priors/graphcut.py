"""An s-t minimum cut for two-label segmentation, with scipy only (GrabCut's graph cut).

The energy is GrabCut's (Rother et al. 2004): a per-pixel data term (the log-likelihood ratio
of two colour/texture mixtures) and a contrast-sensitive Potts term over the 8 neighbours,
``gamma * exp(-beta |I_p - I_q|^2) / dist(p, q)``. It is minimised exactly by a maximum flow
(:func:`scipy.sparse.csgraph.maximum_flow`, Dinic's algorithm, on integer capacities: the
energies are scaled and rounded) and a breadth-first search of the residual graph from the
source (the pixels still reachable are the foreground).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "box_prior",
    "CUT_SCALE",
    "GAMMA",
    "MIN_KEEP",
    "cut_from",
    "grabcut_loop",
    "mean_boundary_weight",
    "min_cut",
    "pair_weights",
]

#: Weight of the smoothness term (GrabCut's value, for colours in [0, 255]-independent units).
GAMMA = 50.0
#: Energies are multiplied by this and rounded to integers for the maximum flow.
CUT_SCALE = 16.0
#: A cut keeping less than this fraction of the foreground is a collapse (:func:`grabcut_loop`).
MIN_KEEP = 0.5
#: Box prior: GrabCut-like mean-field rounds (fit the mixtures to the current mask, smooth, threshold).
BOX_ROUNDS = 20
#: Box prior: pixels this sure of their side, eroded by :data:`SEED_EROSION`, seed the walk.
SEED_CONFIDENCE = 0.9
SEED_EROSION = 2
#: Box prior: graph-cut rounds after the mean-field start.
CUT_ROUNDS = 8
#: Box prior: images with more pixels than this skip the graph cut (set-up time).
CUT_PIXELS = 512 * 512
#: Capacity of a fixed pixel's terminal link (more than any cut through pixel links can cost).
HARD = 2**30


def pair_weights(unit: np.ndarray, gamma: float = GAMMA) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The smoothness term's edges of a ``(C, Y, X)`` image: 8 neighbours, GrabCut's weights.

    Returns
    -------
    list of ``(first, second, weight)``
        Flat pixel indices of each edge's two ends and its weight ``gamma * exp(-beta d^2) /
        length`` (``beta = 1 / (2 mean d^2)`` over all edges, ``d`` the colour difference).
    """
    img = np.moveaxis(np.asarray(unit, np.float64), 0, -1)
    h, w = img.shape[:2]
    index = np.arange(h * w).reshape(h, w)
    pairs = []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        ys, ye = 0, h - dy
        xs, xe = max(0, -dx), w - max(0, dx)
        a = img[ys:ye, xs:xe]
        b = img[ys + dy : ye + dy, xs + dx : xe + dx]
        d2 = ((a - b) ** 2).sum(-1)
        first = index[ys:ye, xs:xe].ravel()
        second = index[ys + dy : ye + dy, xs + dx : xe + dx].ravel()
        pairs.append((first, second, d2.ravel(), float(np.hypot(dy, dx))))
    beta = 1.0 / (2.0 * np.mean(np.concatenate([p[2] for p in pairs])) + 1e-12)
    return [(f, s, gamma * np.exp(-beta * d2) / length) for f, s, d2, length in pairs]


def min_cut(
    log_ratio: np.ndarray,
    pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    fixed: np.ndarray | None = None,
    scale: float = CUT_SCALE,
) -> np.ndarray:
    """The labelling of least energy: foreground where the data and the neighbours agree it is.

    Parameters
    ----------
    log_ratio
        ``(Y, X)`` data term, ``log p(fg) - log p(bg)`` per pixel (positive: foreground).
    pairs
        Smoothness edges from :func:`pair_weights` (cost of giving the two ends different labels).
    fixed
        Optional ``(Y, X)`` labels: 1 foreground, 2 background, 0 free.
    scale
        Energies are multiplied by this and rounded (the maximum flow needs integers).

    Returns
    -------
    numpy.ndarray
        bool ``(Y, X)``: the foreground (the source's side of a minimum cut).
    """
    from scipy import sparse
    from scipy.sparse.csgraph import breadth_first_order, maximum_flow

    shape = log_ratio.shape
    n = log_ratio.size
    src, snk = n, n + 1
    lr = np.clip(np.asarray(log_ratio, np.float64).ravel() * scale, -1e8, 1e8)
    cap_s = np.rint(np.maximum(lr, 0)).astype(np.int64)  # cut when p ends on the background side
    cap_t = np.rint(np.maximum(-lr, 0)).astype(np.int64)
    if fixed is not None:
        f = np.asarray(fixed).ravel()
        cap_s = np.where(f == 1, HARD, np.where(f == 2, 0, cap_s))
        cap_t = np.where(f == 2, HARD, np.where(f == 1, 0, cap_t))
    rows, cols, caps = [], [], []
    for first, second, weight in pairs:
        wq = np.rint(weight * scale).astype(np.int64)
        keep = wq > 0
        rows += [first[keep], second[keep]]
        cols += [second[keep], first[keep]]
        caps += [wq[keep], wq[keep]]
    pix = np.arange(n)
    on_s, on_t = cap_s > 0, cap_t > 0
    rows += [np.full(on_s.sum(), src), pix[on_t]]
    cols += [pix[on_s], np.full(on_t.sum(), snk)]
    caps += [cap_s[on_s], cap_t[on_t]]
    graph = sparse.csr_array(
        (np.concatenate(caps).astype(np.int32), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n + 2, n + 2),
    )
    graph.sum_duplicates()
    flow = maximum_flow(graph, src, snk, method="dinic").flow
    residual = sparse.csr_array(graph - flow)
    residual.data[residual.data < 0] = 0
    residual.eliminate_zeros()
    reached = breadth_first_order(residual, src, directed=True, return_predecessors=False)
    fg = np.zeros(n + 2, bool)
    fg[reached] = True
    return fg[:n].reshape(shape)


def grabcut_loop(
    model: object,
    unit: np.ndarray,
    start: np.ndarray,
    fixed: np.ndarray | None = None,
    rounds: int = 8,
    gamma: float = GAMMA,
    prior_logit: np.ndarray | None = None,
    min_keep: float = MIN_KEEP,
) -> tuple[np.ndarray, np.ndarray]:
    """GrabCut's iterations: fit the two mixtures to the mask, cut, repeat.

    Parameters
    ----------
    model
        A :class:`~napari_doubledip.core.priors.segmentation.ColourModel` (its ``log_ratio``).
    unit
        ``(C, Y, X)`` image in unit range (the smoothness term's contrast).
    start
        bool ``(Y, X)``: the first mask the mixtures are fitted to.
    fixed
        Optional ``(Y, X)`` labels kept (1 foreground, 2 background, 0 free); fixed pixels
        weigh in the fits on their side.
    rounds
        Fits and cuts; stops early when the mask no longer changes.
    gamma
        Smoothness weight (:data:`GAMMA`).
    prior_logit
        Optional ``(Y, X)`` log-odds added to the mixtures' (e.g. a random walk's).
    min_keep
        A cut that keeps less than this fraction of the mask's foreground is taken for
        GrabCut's collapse (the background's mixtures explain the object too, as for grey
        texture on grey texture): the loop stops at the mask before it.

    Returns
    -------
    mask, log_ratio
        The last cut (bool ``(Y, X)``) and the data term it was cut on.
    """
    pairs = pair_weights(unit, gamma)
    mask = np.asarray(start, bool)
    shape = mask.shape
    lr = np.zeros(shape)
    for _ in range(int(rounds)):
        w_fg, w_bg = mask.astype(np.float64), (~mask).astype(np.float64)
        if fixed is not None:
            w_fg = np.where(fixed == 2, 0.0, np.maximum(w_fg, fixed == 1))
            w_bg = np.where(fixed == 1, 0.0, np.maximum(w_bg, fixed == 2))
        if w_fg.sum() < 10 or w_bg.sum() < 10:
            break
        lr = model.log_ratio(w_fg.ravel(), w_bg.ravel()).reshape(shape)  # type: ignore[attr-defined]
        if prior_logit is not None:
            lr = lr + prior_logit
        new = min_cut(lr, pairs, fixed)
        if new.sum() < min_keep * mask.sum():
            break
        if np.array_equal(new, mask):
            break
        mask = new
    return mask, lr


def box_prior(
    unit: np.ndarray, box: tuple[int, int, int, int], seed: int = 0, beta: float = 60.0, cut: bool = True
) -> np.ndarray:
    """Foreground probability ``(Y, X)`` of an object inside ``box`` (0 outside it).

    1. GrabCut's loop (Rother et al. 2004) for :data:`BOX_ROUNDS` rounds, in standardised
       CIELAB (:class:`~.segmentation.ColourModel`, five components a side) with :func:`~.segmentation.mean_field`
       smoothing instead of a graph cut: the inside starts as foreground, the outside is
       background, each round re-fits both mixtures to the current mask;
    2. its confident pixels (:data:`SEED_CONFIDENCE`, eroded) and the box's outside seed a
       random walk over colour/texture (:func:`~.segmentation.random_walk_prior`), refined as strokes are
       (:func:`~.segmentation.refine_prior`);
    3. with ``cut``, GrabCut's loop again from that mask with a true graph cut
       (:func:`grabcut_loop`: :data:`CUT_ROUNDS` rounds, the same mixtures, a
       minimum cut instead of mean field; a cut that drops most of the mask, GrabCut's
       collapse, is refused). Returns the cut's mask (0 / 1). Images over :data:`CUT_PIXELS`
       skip it (measured on this 2-core CPU under load: the cut rounds add about 0.3 s at
       128², 3 s at 256², 18 s at 512²).

    Measured on the benchmark's eight composites (box prior alone, IoU): 128², 0.744 without
    the cut, 0.876 with it (GrabCut 0.787); 256², 0.718 and 0.821 (GrabCut 0.732). Started
    from the box itself, the cut loop scored 0.754 at 128²: it shrinks the box well where the
    colours differ, but collapses where they do not.
    """
    from scipy import ndimage

    from .segmentation import (
        MIN_REFIT_WEIGHT,
        ColourModel,
        _lightness,
        _logit,
        _standardise,
        mean_field,
        random_walk_prior,
        refine_prior,
    )

    shape = unit.shape[1:]
    y0, x0, y1, x1 = box
    inside = np.zeros(shape, bool)
    inside[y0:y1, x0:x1] = True
    model = ColourModel(_standardise(_lightness(unit).reshape(-1, unit.shape[0])), 5, seed, reg=1e-3)
    mask, q = inside.copy(), inside.astype(np.float64)
    for _ in range(BOX_ROUNDS):
        if mask.sum() < MIN_REFIT_WEIGHT:
            break
        p = model.probability(mask.ravel().astype(np.float64), (~mask).ravel().astype(np.float64))
        q = np.where(inside, mean_field(_logit(p.reshape(shape)), unit), 0.0)
        mask = q > 0.5
    seeds = np.where(inside, 0, 2).astype(np.uint8)
    seeds[ndimage.binary_erosion(q < 1 - SEED_CONFIDENCE, iterations=SEED_EROSION) & inside] = 2
    seeds[ndimage.binary_erosion(q > SEED_CONFIDENCE, iterations=SEED_EROSION)] = 1
    if np.any(seeds == 1):
        walk = random_walk_prior(unit, seeds, beta)
        q = np.where(inside, refine_prior(unit, walk, seeds, seed), 0.0)
    if not cut or q.size > CUT_PIXELS:  # bounded set-up: past 512² the mean-field prior alone
        return q
    model.rng = np.random.default_rng(seed)
    mask, _ = grabcut_loop(model, unit, q > 0.5, np.where(inside, 0, 2), rounds=CUT_ROUNDS)
    return mask.astype(np.float64)


def mean_boundary_weight(unit: np.ndarray, mask: np.ndarray) -> float:
    """The mean contrast weight ``exp(-beta d^2) / length`` of the 8-neighbour edges a mask cuts.

    Low where the mask's outline runs along strong image edges, near 1 / length where it
    crosses flat regions; 1.0 for a mask that cuts nothing (all one side).
    """
    flat = np.asarray(mask, bool).ravel()
    cut, weights = [], []
    for first, second, weight in pair_weights(unit, 1.0):
        sel = flat[first] != flat[second]
        cut.append(int(sel.sum()))
        weights.append(weight[sel])
    return float(np.concatenate(weights).mean()) if sum(cut) else 1.0


def cut_from(
    unit: np.ndarray, start: np.ndarray, fixed: np.ndarray, seed: int = 0, rounds: int = CUT_ROUNDS
) -> np.ndarray:
    """GrabCut's loop (:func:`grabcut_loop`) from a bool mask ``start``, with the box prior's mixtures.

    Five components a side in standardised CIELAB (as :func:`box_prior`); ``fixed`` labels
    kept (1 foreground, 2 background, 0 free). Returns the bool mask.
    """
    from .segmentation import ColourModel, _lightness, _standardise

    model = ColourModel(_standardise(_lightness(unit).reshape(-1, unit.shape[0])), 5, seed, reg=1e-3)
    mask, _ = grabcut_loop(model, unit, np.asarray(start, bool) & (fixed != 2), fixed, rounds=rounds)
    return mask
