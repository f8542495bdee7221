"""Classical segmentation priors.

Seeds from the image's edge, colour/texture features, a random walk from painted strokes, and a
colour model of two Gaussian mixtures (GrabCut-like).
"""

from __future__ import annotations

import numpy as np

__all__ = ["ColourModel", "edge_as_background", "pixel_features", "random_walk_prior"]


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
