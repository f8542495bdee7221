"""Classical segmentation priors.

Seeds from the image's edge, colour/texture features, a random walk from painted strokes, a
colour model of two Gaussian mixtures (GrabCut-like), the unsupervised start (a 2-means split of
colour/texture refined by a walk, with the border's colour model) and the box start (mixtures
re-fitted inside a rectangle with mean-field smoothing).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..conversion import ImageLayout

__all__ = [
    "ColourModel",
    "box_hints",
    "box_prior",
    "check_box",
    "check_hints",
    "edge_as_background",
    "first_fit_weights",
    "painted_labels",
    "pixel_features",
    "random_walk_prior",
    "colour_texture_features",
    "mean_field",
    "refine_prior",
    "refit_weights",
    "two_means",
    "split_prior",
    "unsupervised_prior",
]

#: Weight of a painted pixel in a colour-model re-fit (unpainted pixels weigh their mask value).
PAINTED_WEIGHT = 5.0
#: A re-fit needs at least this much weight on each side (else the prior is kept).
MIN_REFIT_WEIGHT = 10.0
#: Without painted foreground (or background), the unpainted pixels' weight as a guess of it.
GUESS_WEIGHT = 0.1
#: Without hints: the image border taken as background is ``min(Y, X) / BORDER_FRACTION`` wide.
BORDER_FRACTION = 32
#: Without hints: the weight of the pixels inside the border as a foreground guess.
INTERIOR_WEIGHT = 0.5
#: The random walk is solved directly (not iteratively) up to this many pixels.
DIRECT_SOLVE_PIXELS = 512 * 512


def edge_as_background(hints: np.ndarray) -> np.ndarray:
    """``hints`` with its unpainted outer edge (the image's one-pixel frame) set to background (2).

    For an object inside the frame: whatever touches the image's edge and is not painted
    foreground belongs with the background. Painted pixels are kept; returns a new array.
    """
    seeds = np.array(hints, dtype=np.uint8, copy=True)
    frame = np.zeros(seeds.shape, bool)
    frame[0], frame[-1], frame[:, 0], frame[:, -1] = True, True, True, True
    seeds[frame & (seeds == 0)] = 2
    return seeds


def pixel_features(unit: np.ndarray, window: int = 5) -> np.ndarray:
    """Per-pixel colour/texture features ``(Y*X, D)`` of a unit-range ``(C, Y, X)`` image.

    Colour (CIELAB for RGB, scaled to about [0, 1]), its local mean and its local standard
    deviation over a ``window`` x ``window`` square (texture), each standardised over the image.
    """
    from scipy import ndimage

    c = unit.shape[0]
    if c == 3:
        from skimage.color import rgb2lab

        lab = rgb2lab(np.moveaxis(np.clip(unit, 0, 1), 0, -1).astype(np.float64))
        base = np.moveaxis(lab, -1, 0) / np.array([100.0, 128.0, 128.0])[:, None, None]
    else:
        base = unit.astype(np.float64)
    mean = np.stack([ndimage.uniform_filter(b, window, mode="reflect") for b in base])
    sq = np.stack([ndimage.uniform_filter(b * b, window, mode="reflect") for b in base])
    std = np.sqrt(np.clip(sq - mean**2, 0, None))
    feats = np.concatenate([base, mean, std]).reshape(3 * base.shape[0], -1).T
    feats = (feats - feats.mean(0)) / (feats.std(0) + 1e-6)
    return feats.astype(np.float64)


def random_walk_prior(unit: np.ndarray, hints: np.ndarray, beta: float = 60.0, window: int = 9) -> np.ndarray:
    """Foreground probability ``(Y, X)`` of a random walk from the hints over texture features.

    A random walker (Grady 2006, ``skimage.segmentation.random_walker``) on
    :func:`pixel_features` (colour, and its local mean and spread over ``window`` pixels)
    instead of on raw colour: inside a textured region neighbouring feature vectors stay
    close, so the walk crosses the region's own texture easily and stops at texture changes.
    Needs both labels among the hints. ``beta``: edge sharpness (skimage's convention).
    """
    import warnings

    from skimage.segmentation import random_walker

    if np.all(hints > 0):  # nothing left to walk to
        return (hints == 1).astype(np.float64)
    feats = pixel_features(unit, window).reshape(*unit.shape[1:], -1)
    with warnings.catch_warnings():  # the "probability outside [0, 1]" tolerance note
        warnings.simplefilter("ignore", UserWarning)
        # a direct solve is ~10x faster than the default conjugate gradients up to 512² (same
        # result within its tolerance); past that its memory grows faster than the image
        mode = "bf" if hints.size <= DIRECT_SOLVE_PIXELS else "cg_j"
        prob = random_walker(
            feats, hints.astype(np.int32), beta=beta, mode=mode, channel_axis=-1, return_full_prob=True
        )[0]
    return np.clip(prob, 0.0, 1.0)


class ColourModel:
    """Two weighted Gaussian mixtures (foreground, background) over :func:`pixel_features`.

    Fitted from soft per-pixel weights (hinted pixels and the current mask); gives the
    foreground probability of every pixel. This is the colour/texture prior that feeds the
    mask generator (as in GrabCut, re-estimated while the mask improves).
    """

    def __init__(self, features: np.ndarray, components: int = 3, seed: int = 0, reg: float = 0.05) -> None:
        self.x = features
        self.components = int(components)
        self.rng = np.random.default_rng(seed)
        self.reg = float(reg)

    def _fit(self, w: np.ndarray) -> list[tuple[float, np.ndarray, np.ndarray]]:
        x, d = self.x, self.x.shape[1]
        sel = w > 1e-3
        k = max(1, min(self.components, int(sel.sum()) // (4 * d)))
        xs, ws = x[sel], w[sel]
        # weighted k-means++-like init, a few Lloyd iterations, then Gaussians per cluster
        centres = xs[self.rng.choice(len(xs), size=k, replace=False, p=ws / ws.sum())]
        for _ in range(5):
            assign = ((xs[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
            for j in range(k):
                m = assign == j
                if m.any():
                    centres[j] = np.average(xs[m], axis=0, weights=ws[m])
        comps = []
        for j in range(k):
            m = assign == j
            if ws[m].sum() <= 0:
                continue
            mu = np.average(xs[m], axis=0, weights=ws[m])
            diff = xs[m] - mu
            cov = (diff * ws[m, None]).T @ diff / ws[m].sum() + self.reg * np.eye(d)
            comps.append((float(ws[m].sum() / ws.sum()), mu, cov))
        return comps

    def _loglik(self, comps: list[tuple[float, np.ndarray, np.ndarray]]) -> np.ndarray:
        logs = []
        for pi, mu, cov in comps:
            inv = np.linalg.inv(cov)
            _, logdet = np.linalg.slogdet(cov)
            diff = self.x - mu
            maha = np.einsum("nd,de,ne->n", diff, inv, diff)
            logs.append(np.log(pi) - 0.5 * (maha + logdet))
        stacked = np.stack(logs)
        top = stacked.max(0)
        return top + np.log(np.exp(stacked - top).sum(0))

    def log_ratio(self, w_fg: np.ndarray, w_bg: np.ndarray) -> np.ndarray:
        """``log p(x | fg) - log p(x | bg)`` per pixel, mixtures fitted to the weights ``(Y*X,)``."""
        return self._loglik(self._fit(w_fg)) - self._loglik(self._fit(w_bg))

    def probability(self, w_fg: np.ndarray, w_bg: np.ndarray) -> np.ndarray:
        """Foreground probability per pixel from foreground/background weights ``(Y*X,)``."""
        return 1.0 / (1.0 + np.exp(-np.clip(self.log_ratio(w_fg, w_bg), -30, 30)))


def check_hints(hints: np.ndarray, layout: ImageLayout) -> np.ndarray:
    """Validate a hint label image (0 unknown, 1 foreground, 2 background); return it as uint8.

    Refused: hints of another size, values other than 0, 1 and 2, no painted pixel, and one
    label painted over every pixel (nothing left to segment). Strokes of one label only are
    fine: with only foreground painted the image's edge is taken as background (``edge``).
    """
    h = np.asarray(hints)
    if h.ndim != 2 or h.shape != layout.spatial_shape:
        raise ValueError(
            f"hints has shape {h.shape} but the image is {layout.shape}; hints must be a 2-D label "
            f"image with the image's (Y, X) size {layout.spatial_shape}"
        )
    if np.issubdtype(h.dtype, np.floating) and not np.all(np.isfinite(h)):
        raise ValueError("hints contains NaN or infinite values")
    values = np.unique(h)
    bad = [v for v in values.tolist() if v not in (0, 1, 2)]
    if bad:
        raise ValueError(
            f"hints may only hold 0 (unknown), 1 (foreground) and 2 (background); found {bad[:5]}"
        )
    h = h.astype(np.uint8)
    if not np.any(h):
        raise ValueError(
            "hints are all 0 (unknown): paint at least one foreground (1) or background (2) stroke, "
            "or pass hints=None for unsupervised segmentation"
        )
    if np.all(h == h.flat[0]):  # one label painted over every pixel: no unknown pixel, no other side
        side = "foreground (1)" if h.flat[0] == 1 else "background (2)"
        raise ValueError(
            f"hints mark every pixel as {side}: nothing is left to segment; paint a few strokes "
            "(1 on the foreground, 2 on the background) and leave the other pixels 0 (unknown)"
        )
    return h


def painted_labels(hints: np.ndarray | None) -> set[int]:
    """The labels (1, 2) present in a hint image; empty without hints."""
    return set() if hints is None else set(np.unique(hints).tolist()) - {0}


def first_fit_weights(seeds: np.ndarray | None, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Foreground and background weights ``(Y*X,)`` of the first :class:`ColourModel` fit.

    The painted seeds (with only one side painted, the unpainted pixels are a weak guess of the
    other); without seeds, the image's border as background and its inside as a weak foreground.
    """
    h, w = shape
    if seeds is not None:
        fg = (seeds == 1).astype(np.float64)
        bg = (seeds == 2).astype(np.float64)
        if fg.sum() == 0:  # only background painted: everything else is a foreground guess
            fg = GUESS_WEIGHT * (seeds == 0)
        if bg.sum() == 0:
            bg = GUESS_WEIGHT * (seeds == 0)
        return fg.ravel(), bg.ravel()
    ring = max(1, min(h, w) // BORDER_FRACTION)
    border = np.zeros((h, w), bool)
    border[:ring], border[-ring:], border[:, :ring], border[:, -ring:] = True, True, True, True
    return (~border).astype(np.float64).ravel() * INTERIOR_WEIGHT, border.astype(np.float64).ravel()


def refit_weights(mask: np.ndarray, seeds: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Foreground and background weights ``(Y*X,)`` of a :class:`ColourModel` re-fit to a soft mask.

    Each pixel weighs its mask value (foreground) and one minus it (background); painted seeds
    weigh :data:`PAINTED_WEIGHT` on their side and 0 on the other. ``None`` when either side
    weighs less than :data:`MIN_REFIT_WEIGHT` (too little to fit).
    """
    m = np.clip(np.asarray(mask, np.float64).ravel(), 0, 1)
    w_fg, w_bg = m.copy(), 1.0 - m
    if seeds is not None:
        hv = seeds.ravel()
        w_fg = np.where(hv == 1, PAINTED_WEIGHT, np.where(hv == 2, 0.0, w_fg))
        w_bg = np.where(hv == 2, PAINTED_WEIGHT, np.where(hv == 1, 0.0, w_bg))
    if w_fg.sum() < MIN_REFIT_WEIGHT or w_bg.sum() < MIN_REFIT_WEIGHT:
        return None
    return w_fg, w_bg


def two_means(x: np.ndarray, seed: int = 0, restarts: int = 4, iterations: int = 30) -> np.ndarray:
    """Labels (0/1) of the best of ``restarts`` 2-means clusterings of the rows of ``x`` (least inertia)."""
    rng = np.random.default_rng(seed)
    best: tuple[float, np.ndarray] | None = None
    for _ in range(restarts):
        centres = x[rng.choice(len(x), size=2, replace=False)]
        for _ in range(iterations):
            dist = ((x[:, None, :] - centres[None]) ** 2).sum(-1)
            assign = dist.argmin(1)
            new = np.stack([x[assign == j].mean(0) if np.any(assign == j) else centres[j] for j in range(2)])
            if np.allclose(new, centres):
                break
            centres = new
        inertia = float(dist.min(1).sum())
        if best is None or inertia < best[0]:
            best = (inertia, assign)
    assert best is not None
    return best[1]


def _frame(shape: tuple[int, int]) -> np.ndarray:
    frame = np.zeros(shape, bool)
    frame[0], frame[-1], frame[:, 0], frame[:, -1] = True, True, True, True
    return frame


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-3, 1 - 1e-3)
    return np.log(p / (1 - p))


#: Unsupervised: the 2-means sides are eroded this many pixels into walk seeds.
SPLIT_EROSION = 3


def split_prior(unit: np.ndarray, seed: int = 0, beta: float = 60.0) -> np.ndarray:
    """Foreground probability ``(Y, X)`` without hints from a classical split, refined.

    1. 2-means on :func:`pixel_features` (colour, local mean and spread over 5 x 5): the side
       covering less of the image's border is the foreground;
    2. a random walk (:func:`random_walk_prior`) from both sides eroded by
       :data:`SPLIT_EROSION` pixels, the border added to the background seeds (the split's
       ragged edges follow the texture's region boundaries);
    3. combined (sum of logits) with :class:`ColourModel` fitted to the border (background)
       against the inside, the previous unsupervised prior: where the 2-means split is no
       object/background split (two photos of similar colour), the border model still knows
       what the background looks like;
    4. refined by GrabCut's loop (:func:`refine_prior`).

    Measured on the benchmark's eight composites (128², prior alone): 0.607 mean IoU; the split
    alone 0.491, steps 1-3 0.551 (2-means on the same features with the better side: 0.544).
    The fallback of :func:`unsupervised_prior`.
    """
    from scipy import ndimage

    shape = unit.shape[1:]
    feats = pixel_features(unit)
    side = two_means(feats, seed).reshape(shape) == 1
    frame = _frame(shape)
    if side[frame].mean() > 0.5:
        side = ~side
    border_model = ColourModel(feats, seed=seed).probability(*first_fit_weights(None, shape)).reshape(shape)
    seeds = np.zeros(shape, np.uint8)
    seeds[ndimage.binary_erosion(side, iterations=SPLIT_EROSION) & ~frame] = 1
    seeds[ndimage.binary_erosion(~side, iterations=SPLIT_EROSION) | frame] = 2
    if not np.any(seeds == 1):
        return border_model
    walk = random_walk_prior(unit, seeds, beta)
    combined = 1.0 / (1.0 + np.exp(-(_logit(walk) + _logit(border_model))))
    return refine_prior(unit, combined, seed=seed)


#: Without hints: the split's cut replaces the frame's object only if this much of it lies inside that object.
SPLIT_INSIDE = 0.9


def unsupervised_prior(unit: np.ndarray, seed: int = 0, beta: float = 60.0) -> np.ndarray:
    """Foreground probability ``(Y, X)`` without hints: an object inside the frame.

    Two classical answers, then a choice between them:

    1. the image's border ring (``min(Y, X) / BORDER_FRACTION`` wide) taken as a box drawn
       around the object: the box prior (:func:`~.graphcut.box_prior`: GrabCut's loop, a
       walk, then graph cuts) finds the object inside it;
    2. the classical split (:func:`split_prior`: 2-means on colour/texture refined by a walk),
       then graph cuts from it with the ring as background (:func:`~.graphcut.cut_from`).

    The first is the answer unless the second lies (at least :data:`SPLIT_INSIDE`) inside it
    and its outline runs along stronger image edges (a lower
    :func:`~.graphcut.mean_boundary_weight`): then the first has taken in a part of the
    background that looks like the object (grey cat fur next to a grey moon), and the tighter
    object of the split is returned. When the first finds no foreground, the second.

    Measured (128², prior alone, IoU): the benchmark's eight composites 0.802 without the
    choice (the split prior 0.603; 2-means given its better side 0.544); six composites of
    other skimage photos 0.900 (split prior 0.743, 2-means 0.645). See BENCHMARKS.md for the
    choice.
    """
    from .graphcut import cut_from, mean_boundary_weight

    h, w = unit.shape[1:]
    ring = max(1, min(h, w) // BORDER_FRACTION)
    inner = box_prior(unit, (ring, ring, h - ring, w - ring), seed, beta)
    fixed = np.full((h, w), 2, np.uint8)
    fixed[ring : h - ring, ring : w - ring] = 0
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


def check_box(box: Any, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """A box ``(y0, x0, y1, x1)`` (half-open, pixels) clipped to ``shape``; raises when it is empty or outside."""
    try:
        y0, x0, y1, x1 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError(f"box must be four numbers (y0, x0, y1, x1), got {box!r}") from None
    if not all(np.isfinite([y0, x0, y1, x1])):
        raise ValueError(f"box must hold finite numbers, got {box!r}")
    h, w = shape
    cy0, cx0 = max(0, int(np.floor(min(y0, y1)))), max(0, int(np.floor(min(x0, x1))))
    cy1, cx1 = min(h, int(np.ceil(max(y0, y1)))), min(w, int(np.ceil(max(x0, x1))))
    if cy1 - cy0 < 2 or cx1 - cx0 < 2:
        raise ValueError(
            f"box {tuple(box)} (y0, x0, y1, x1) leaves less than 2 x 2 pixels of the {h} x {w} image"
        )
    if (cy0, cx0, cy1, cx1) == (0, 0, h, w):
        raise ValueError(f"box {tuple(box)} covers the whole {h} x {w} image: draw it around the object")
    return cy0, cx0, cy1, cx1


def box_hints(
    box: tuple[int, int, int, int], shape: tuple[int, int], hints: np.ndarray | None = None
) -> np.ndarray:
    """Hints with everything outside ``box`` background (2); painted strokes (``hints``) win."""
    y0, x0, y1, x1 = box
    seeds = np.full(shape, 2, np.uint8)
    seeds[y0:y1, x0:x1] = 0
    if hints is not None:
        seeds = np.where(hints > 0, hints, seeds).astype(np.uint8)
    return seeds


#: Weight of the neighbours' agreement in the mean-field smoothing.
SMOOTHING = 6.0
#: Rounds of :func:`refine_prior`.
REFINE_ROUNDS = 4


def _standardise(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(0)) / (x.std(0) + 1e-6)


def _lightness(unit: np.ndarray) -> np.ndarray:
    """``(Y, X, C)`` colour of a unit ``(C, Y, X)`` image: CIELAB for RGB, else as it is."""
    if unit.shape[0] == 3:
        from skimage.color import rgb2lab

        return rgb2lab(np.moveaxis(np.clip(unit, 0, 1), 0, -1).astype(np.float64))
    return np.moveaxis(unit, 0, -1).astype(np.float64)


def colour_texture_features(unit: np.ndarray, windows: tuple[int, ...] = (5, 11)) -> np.ndarray:
    """Colour and the local spread of lightness, ``(Y*X, C + len(windows))``, standardised.

    Colour is CIELAB for RGB; the spread of its first channel over each window tells grey
    textures apart. The mixtures' features in :func:`refine_prior`.
    """
    from scipy import ndimage

    colour = _lightness(unit)
    light = colour[..., 0]
    feats = [colour.reshape(-1, colour.shape[-1])]
    for window in windows:
        mean = ndimage.uniform_filter(light, window, mode="reflect")
        sq = ndimage.uniform_filter(light * light, window, mode="reflect")
        feats.append(np.sqrt(np.clip(sq - mean**2, 0, None)).reshape(-1, 1))
    return _standardise(np.concatenate(feats, 1))


def mean_field(
    unary: np.ndarray, unit: np.ndarray, weight: float = SMOOTHING, iterations: int = 10
) -> np.ndarray:
    """Foreground probability from a per-pixel log-odds ``unary``, smoothed by mean field.

    Each pixel leans towards its four neighbours' side, with contrast-sensitive weights
    ``exp(-beta |I_p - I_q|^2)`` (GrabCut's, ``beta`` from the image's mean contrast): the
    smoothness of GrabCut's graph cut, as a few cheap sweeps.
    """
    img = np.moveaxis(unit, 0, -1).astype(np.float64)
    dx = ((img[:, 1:] - img[:, :-1]) ** 2).sum(-1)
    dy = ((img[1:] - img[:-1]) ** 2).sum(-1)
    beta = 1.0 / (2.0 * np.mean(np.concatenate([dx.ravel(), dy.ravel()])) + 1e-12)
    wx, wy = np.exp(-beta * dx), np.exp(-beta * dy)
    q = 1.0 / (1.0 + np.exp(-np.clip(unary, -30, 30)))
    for _ in range(iterations):
        s = 2 * q - 1
        msg = np.zeros(unary.shape)
        msg[:, :-1] += wx * s[:, 1:]
        msg[:, 1:] += wx * s[:, :-1]
        msg[:-1] += wy * s[1:]
        msg[1:] += wy * s[:-1]
        q = 1.0 / (1.0 + np.exp(-np.clip(unary + weight * msg, -30, 30)))
    return q


def refine_prior(
    unit: np.ndarray, start: np.ndarray, seeds: np.ndarray | None = None, seed: int = 0
) -> np.ndarray:
    """GrabCut's loop started from a foreground probability ``start`` ``(Y, X)``; returns the refined one.

    Each of :data:`REFINE_ROUNDS` rounds fits two mixtures (:class:`ColourModel` on
    :func:`colour_texture_features`) to the current mask (seeds weigh :data:`PAINTED_WEIGHT`),
    adds their log-likelihood ratio to ``start``'s log-odds, smooths (:func:`mean_field`),
    keeps the seeds, and thresholds. Measured on the benchmark's eight composites (prior alone):
    the walk from three + three hint disks 0.74 -> 0.80, from skeleton strokes 0.88 -> 0.91.
    """
    model = ColourModel(colour_texture_features(unit), components=5, seed=seed)
    start_logit = _logit(start)
    q, mask = start, start > 0.5
    for _ in range(REFINE_ROUNDS):
        weights = refit_weights(mask.astype(np.float64), seeds)
        if weights is None:
            break
        p = model.probability(*weights).reshape(start.shape)
        q = mean_field(_logit(p) + start_logit, unit)
        if seeds is not None:
            q = np.where(seeds == 1, 1.0, np.where(seeds == 2, 0.0, q))
        mask = q > 0.5
    return q


from .graphcut import box_prior  # noqa: E402  (re-exported: it builds on the functions above)
