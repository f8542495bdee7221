"""Classical segmentation priors.

Seeds from the image's edge, colour/texture features, a random walk from painted strokes, and a
colour model of two Gaussian mixtures (GrabCut-like).
"""

from __future__ import annotations

import numpy as np

from ..conversion import ImageLayout

__all__ = [
    "ColourModel",
    "check_hints",
    "edge_as_background",
    "first_fit_weights",
    "painted_labels",
    "pixel_features",
    "random_walk_prior",
    "refit_weights",
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
        prob = random_walker(
            feats, hints.astype(np.int32), beta=beta, channel_axis=-1, return_full_prob=True
        )[0]
    return np.clip(prob, 0.0, 1.0)


class ColourModel:
    """Two weighted Gaussian mixtures (foreground, background) over :func:`pixel_features`.

    Fitted from soft per-pixel weights (hinted pixels and the current mask); gives the
    foreground probability of every pixel. This is the colour/texture prior that feeds the
    mask generator (as in GrabCut, re-estimated while the mask improves).
    """

    def __init__(self, features: np.ndarray, components: int = 3, seed: int = 0) -> None:
        self.x = features
        self.components = int(components)
        self.rng = np.random.default_rng(seed)

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
            cov = (diff * ws[m, None]).T @ diff / ws[m].sum() + 0.05 * np.eye(d)
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

    def probability(self, w_fg: np.ndarray, w_bg: np.ndarray) -> np.ndarray:
        """Foreground probability per pixel from foreground/background weights ``(Y*X,)``."""
        llr = self._loglik(self._fit(w_fg)) - self._loglik(self._fit(w_bg))
        return 1.0 / (1.0 + np.exp(-np.clip(llr, -30, 30)))


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
