"""Classical estimates that guide a DIP generator, and the held-out pixels that judge it.

A guided generator (:class:`~napari_doubledip.core.tasks.reconstruction.ImageReconstructionTask`
with ``guide`` set) takes a classical estimate of the clean image as an extra input and outputs a
correction to it, starting at zero: the run starts at the classical result (non-local means for
denoising, biharmonic filling for inpainting) and the generator adds what its structure finds.

Held-out pixels keep the run honest: a small random set of pixels is left out of the fit (and out
of the guide's input), so the error there measures how well the output predicts pixels it never
saw. For independent noise its expectation is the true mean squared error plus the noise variance,
so the run keeps the output with the lowest held-out error, whenever it stops.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from .clipping import away_from_clipping
from .parallel import run_in_threads

if TYPE_CHECKING:
    from .budget import TimeBudget

__all__ = [
    "biharmonic_guide",
    "blend_fills",
    "estimate_noise_sigma",
    "fill_candidates",
    "fill_from_neighbours",
    "fit_fill_weights",
    "holdout_mask",
    "nlm_guide",
    "sure_blend",
]

#: Non-local means filtering strength as a multiple of the noise sigma (scikit-image's example
#: value; on our 256^2 crops it beat 0.6 and 1.0 and larger patches, see BENCHMARKS.md).
NLM_H_PER_SIGMA = 0.8


def holdout_mask(
    shape: tuple[int, int], fraction: float, seed: int, allowed: np.ndarray | None = None
) -> np.ndarray:
    """A seeded random ``(Y, X)`` boolean mask of about ``fraction`` of the ``allowed`` pixels.

    Parameters
    ----------
    shape
        Image size.
    fraction
        Share of the allowed pixels to hold out, in ``[0, 0.5]``.
    seed
        The run's seed (the same seed holds out the same pixels).
    allowed
        Pixels that may be held out (``None``: all).
    """
    if not 0 <= fraction <= 0.5:
        raise ValueError(f"holdout must be in [0, 0.5], got {fraction}")
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x6F1D])
    mask = rng.random(shape) < fraction
    if allowed is not None:
        mask &= allowed
    return mask


def fill_from_neighbours(
    unit: np.ndarray, holes: np.ndarray, radius: int = 2, noise_sigma: float = 0.0, seed: int = 0
) -> np.ndarray:
    """``(C, Y, X)`` copy of ``unit`` whose ``holes`` hold the mean of their known neighbours.

    Used so that a guide computed from the image carries no trace of the held-out pixels' own
    values (their noise must stay unseen for the held-out error to be unbiased). With
    ``noise_sigma`` the filled values get fresh Gaussian noise of that level (seeded), so that
    a patch-based filter sees them as ordinary noisy pixels: smooth holes among noisy pixels
    made non-local means match fewer patches (0.5 dB worse at 256^2 with 5% holes).
    """
    if not holes.any():
        return unit
    known = (~holes).astype(np.float32)
    size = 2 * radius + 1
    weight = ndimage.uniform_filter(known, size, mode="mirror")
    out = unit.copy()
    for c in range(unit.shape[0]):
        mean = ndimage.uniform_filter(unit[c] * known, size, mode="mirror") / np.maximum(weight, 1e-6)
        out[c][holes] = mean[holes]
    # a hole with no known neighbour within the radius (rare): the image's mean
    lonely = holes & (weight < 1e-6)
    if lonely.any():
        out[:, lonely] = unit[:, ~holes].mean(axis=1, keepdims=True)
    if noise_sigma > 0:
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5EED])
        out[:, holes] += rng.normal(0.0, noise_sigma, (unit.shape[0], int(holes.sum()))).astype(out.dtype)
    return out


def estimate_noise_sigma(unit: np.ndarray) -> float:
    """Gaussian noise standard deviation of a ``(C, Y, X)`` unit-range image.

    scikit-image's ``estimate_sigma`` (median absolute deviation of the finest diagonal wavelet
    coefficients, Donoho & Johnstone), averaged over channels: the estimate a user of
    scikit-image's non-local means passes to it, so the guide is exactly that filter's result.
    """
    from skimage.restoration import estimate_sigma

    return float(np.mean(estimate_sigma(np.moveaxis(unit, 0, -1), channel_axis=-1)))


def nlm_guide(
    unit: np.ndarray,
    sigma: float,
    h_per_sigma: float = NLM_H_PER_SIGMA,
    patch_size: int = 5,
    patch_distance: int = 6,
) -> np.ndarray:
    """Non-local means of a ``(C, Y, X)`` unit-range image with noise ``sigma`` (unit range).

    Fast mode; by default 5x5 patches, 13x13 search window, ``h = 0.8 sigma`` (scikit-image's
    example): about 0.1 s at 256^2 and 0.4 s at 512^2 on two cores. ``sigma = 0`` returns the
    image itself.
    """
    from skimage.restoration import denoise_nl_means

    if sigma <= 0:
        return unit.astype(np.float32, copy=True)
    image = np.moveaxis(unit, 0, -1)
    out = denoise_nl_means(
        image,
        h=h_per_sigma * sigma,
        sigma=sigma,
        fast_mode=True,
        patch_size=patch_size,
        patch_distance=patch_distance,
        channel_axis=-1,
    )
    out = out.reshape(image.shape)  # scikit-image drops a single channel axis
    return np.ascontiguousarray(np.moveaxis(out, -1, 0), dtype=np.float32)


#: A noise level (unit range) below which an image counts as noise-free: far under one grey level
#: of 16-bit data.
NOISE_FREE_SIGMA = 1e-6

#: Non-local means members of the SURE blend: (h per sigma, patch size, patch distance).
SURE_NLM_MEMBERS = ((0.5, 5, 6), (0.6, 5, 6), (0.8, 5, 6), (0.6, 7, 9), (0.8, 7, 9))
#: Step of the Monte-Carlo divergence, as a multiple of the noise sigma (the weights changed by
#: under 0.05 dB between 0.01 and 0.1; at 0.5 the estimate breaks down).
SURE_EPSILON = 0.05


def _wavelet(unit: np.ndarray, sigma: float) -> np.ndarray:
    from skimage.restoration import denoise_wavelet

    image = np.moveaxis(unit, 0, -1)
    out = denoise_wavelet(
        image, sigma=sigma, channel_axis=-1, convert2ycbcr=image.shape[-1] == 3, rescale_sigma=True
    ).reshape(image.shape)
    return np.ascontiguousarray(np.moveaxis(out, -1, 0), dtype=np.float32)


#: Index of scikit-image's own non-local means (the peer a user would pick) among the SURE blend's
#: members: always computed, and the blend's fallback where the time budget or Stop cuts it short.
SURE_PEER_MEMBER = 2


def _blend_members(
    unit: np.ndarray, sigma: float, needed: np.ndarray | None = None, budget: TimeBudget | None = None
) -> list[np.ndarray | None]:
    """The classical denoisers' outputs the SURE blend weighs, and the noisy image itself last.

    ``needed``: which members to compute (``None``: all); the others are ``None``. With a
    ``budget``, members other than :data:`SURE_PEER_MEMBER` that would start after Stop or past
    the deadline are left out (``None``).
    """
    count = len(SURE_NLM_MEMBERS) + 2
    want = [needed is None or bool(needed[i]) for i in range(count)]

    def unless_cut(call: Callable[[], np.ndarray]) -> Callable[[], np.ndarray | None]:
        if budget is None:
            return call
        return lambda: call() if budget.allows(0.0) else None

    calls: list[Callable[[], np.ndarray | None] | None] = [
        (
            partial(nlm_guide, unit, sigma, h, p, d)
            if i == SURE_PEER_MEMBER
            else unless_cut(partial(nlm_guide, unit, sigma, h, p, d))
        )
        if want[i]
        else None
        for i, (h, p, d) in enumerate(SURE_NLM_MEMBERS)
    ]
    calls.append(unless_cut(partial(_wavelet, unit, sigma)) if want[-2] else None)
    # the peer first: it is what a cut leaves
    order = [SURE_PEER_MEMBER, *(i for i in range(len(calls)) if i != SURE_PEER_MEMBER)]
    done = run_in_threads([calls[i] for i in order])
    members: list[np.ndarray | None] = [None] * len(calls)
    for i, member in zip(order, done, strict=True):
        members[i] = member
    members.append(unit.astype(np.float32, copy=False) if want[-1] else None)
    return members


def _peer_only() -> np.ndarray:
    """Weights of the SURE blend that keep only the peer member (:data:`SURE_PEER_MEMBER`)."""
    weights = np.zeros(len(SURE_NLM_MEMBERS) + 2)
    weights[SURE_PEER_MEMBER] = 1.0
    return weights


def sure_blend(
    unit: np.ndarray,
    sigma: float,
    seed: int = 0,
    weights: np.ndarray | None = None,
    budget: TimeBudget | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Linear blend of classical denoisers with the weights that minimise Stein's unbiased risk.

    The members are non-local means at three strengths and two patch sizes
    (:data:`SURE_NLM_MEMBERS`), BayesShrink wavelet denoising and the noisy image itself. For
    Gaussian noise of level ``sigma`` the mean squared error of a blend ``sum_i w_i f_i(y)`` to
    the unknown clean image is estimated without bias by SURE, ``|sum_i w_i f_i(y) - y|^2 / N -
    sigma^2 + 2 sigma^2 sum_i w_i div f_i(y) / N``, with each member's divergence estimated by
    one Monte-Carlo probe (Ramani, Blu & Unser 2008): quadratic in the weights, so they are
    solved for in closed form. One filter strength does not suit every image (on the benchmark's
    photos the best NLM strength ranged from 0.5 to 0.8 sigma and the patch size from 5 to 7).
    The weights are kept non-negative (see :func:`_solve_sure`).

    Parameters
    ----------
    unit
        ``(C, Y, X)`` noisy image in unit range.
    sigma
        Noise standard deviation (unit range); 0 returns the image itself.
    seed
        Seed of the divergence probe.
    weights
        Weights from an earlier call on the same kind of data (e.g. the image before some pixels
        were held out) to apply instead of fitting them (no probe: half the cost).
    budget
        Stop flag and deadline: where they cut the blend short, scikit-image's own non-local
        means (:data:`SURE_PEER_MEMBER`) comes back, with weights that say so.

    Returns
    -------
    image, weights
        The ``(C, Y, X)`` float32 blend clipped to [0, 1], and the weights of its members.
    """
    if sigma <= NOISE_FREE_SIGMA:  # nothing to remove (and a filter told sigma = 0 divides by it)
        identity = np.zeros(len(SURE_NLM_MEMBERS) + 2)
        identity[-1] = 1.0
        return np.clip(unit, 0.0, 1.0).astype(np.float32), identity
    # given weights: only the members they use (non-negative weights leave most at zero)
    if weights is None and away_from_clipping(unit, sigma).mean() < SURE_INSIDE_MIN:
        # nearly every value sits at a clipped end (a binary or saturated image): the noise there is
        # not Gaussian and SURE misjudges the blend (0.3-0.4 dB under scikit-image's non-local
        # means on such crops); that filter alone, then
        weights = _peer_only()
    needed = None if weights is None else np.asarray(weights) != 0
    members = _blend_members(unit, sigma, needed, budget)
    peer = members[SURE_PEER_MEMBER]
    cut = any(m is None and (needed is None or needed[i]) for i, m in enumerate(members))
    if weights is None and not cut:
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5E1E])
        windows = _fit_windows(unit.shape[1:], rng)
        if windows is None:  # small enough: fit on the whole image, its members already computed
            systems = [_sure_system(unit, sigma, rng, members)]
        else:
            systems = []
            for wy, wx in windows:
                if budget is not None and not budget.allows(0.0):
                    cut = True
                    break
                systems.append(_sure_system(unit[:, wy, wx], sigma, rng))
        if not cut:
            weights = _solve_sure([sum(parts) for parts in zip(*systems, strict=True)], sigma)
    if cut:  # Stop or the deadline came first: the peer alone
        assert peer is not None
        return np.clip(peer, 0.0, 1.0).astype(np.float32), _peer_only()
    assert weights is not None
    out = sum(float(w) * m for w, m in zip(weights, members, strict=True) if m is not None)
    if not np.all(np.isfinite(out)):  # a member failed on this image: keep the image itself
        weights = np.zeros(len(members))
        weights[-1] = 1.0
        out = unit
    return np.clip(out, 0.0, 1.0).astype(np.float32), np.asarray(weights, float)


#: Images over this many pixels fit the blend's weights on :data:`SURE_FIT_TILES` random tiles of
#: :data:`SURE_FIT_TILE` pixels a side (the probe doubles the members' cost; the weights need
#: far fewer pixels than a large frame has: seven numbers).
SURE_FIT_PIXELS = 2 * 256 * 256
SURE_FIT_TILE = 128
SURE_FIT_TILES = 8


def _fit_windows(shape: tuple[int, ...], rng: np.random.Generator) -> list[tuple[slice, slice]] | None:
    """Random tiles to fit the weights on, or ``None`` to fit on the whole image."""
    ny, nx = int(shape[0]), int(shape[1])
    if ny * nx <= SURE_FIT_PIXELS or min(ny, nx) < SURE_FIT_TILE:
        return None
    side = SURE_FIT_TILE
    corners = zip(
        rng.integers(0, ny - side + 1, SURE_FIT_TILES), rng.integers(0, nx - side + 1, SURE_FIT_TILES)
    )
    return [(slice(int(y), int(y) + side), slice(int(x), int(x) + side)) for y, x in corners]


def _sure_system(
    unit: np.ndarray, sigma: float, rng: np.random.Generator, members: list[np.ndarray | None] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Sums for SURE of a blend on ``unit``: Gram matrix, ``A^T y``, divergences, ``y^T y``, count."""
    computed = [m for m in (members or _blend_members(unit, sigma)) if m is not None]
    probe = rng.choice(np.array([-1.0, 1.0], np.float32), size=unit.shape)
    eps = SURE_EPSILON * sigma
    shifted = [m for m in _blend_members((unit + eps * probe).astype(np.float32), sigma) if m is not None]
    # the risk is estimated on the values away from clipping (Gaussian noise there), or on all
    inside = away_from_clipping(unit, sigma)
    if inside.mean() < SURE_INSIDE_MIN:
        inside[:] = True
    probe = probe * inside
    divergence = np.array(
        [float(np.vdot(probe, b - a)) / eps for a, b in zip(computed, shifted, strict=True)]
    )
    divergence[-1] = float(inside.sum())  # the identity's, exactly
    flat = [m[inside].astype(np.float64) for m in computed]
    target = unit[inside].astype(np.float64)
    gram = np.array([[float(a @ b) for b in flat] for a in flat])
    correlation = np.array([float(a @ target) for a in flat])
    return gram, correlation, divergence, float(target @ target), float(target.size)


#: Least share of values away from clipping for SURE to be estimated on them alone: a tile with
#: fewer is judged on all its values; a whole image with fewer is not blended (its non-local-means
#: member alone, :func:`sure_blend`).
SURE_INSIDE_MIN = 0.1
#: Whether the SURE weights must sum to one (an affine blend, no overall gain). Free non-negative
#: weights summed to 0.98-1.05 and, fitted on the values away from clipping of a bright flat crop
#: (the sky of camera, top left), scaled it down by 6%: 36.0 dB where non-local means gave 43.3;
#: summing to one, 43.2, within 0.06 dB of the free weights on every other crop checked (BENCHMARKS.md).
SURE_AFFINE = True


def _solve_sure(system: list, sigma: float) -> np.ndarray:
    """The non-negative weights minimising SURE, or the single best member's if that goes wrong.

    Non-negative: unconstrained weights extrapolate (2.6 on one NLM strength, -1.4 on the next)
    and a few percent of error in the noise estimate then cost 1.3 dB (the 512^2 camera photo
    went from NLM's 28.95 to 27.6 dB); non-negative ones stayed within 0.05 dB of it or above
    over sigma estimates from 24 to 26.4 (true: 25), at a loss of 0.0-0.1 dB elsewhere. Summing
    to one (:data:`SURE_AFFINE`).
    """
    from scipy.optimize import nnls

    gram, correlation, divergence, energy, count = system
    rhs = correlation - sigma**2 * divergence

    def risk(w: np.ndarray) -> float:  # SURE of the blend with weights w (per value)
        return float(w @ gram @ w - 2 * w @ rhs + energy) / count - sigma**2

    singles = np.eye(len(gram))
    best = singles[min(range(len(gram)), key=lambda i: risk(singles[i]))]
    try:  # min w'Gw - 2 w'r over w >= 0  <=>  min |L'w - L^-1 r|^2 with G = L L'
        lower = np.linalg.cholesky(gram + 1e-9 * np.trace(gram) / len(gram) * np.eye(len(gram)))
        design, target = lower.T, np.linalg.solve(lower, rhs)
        if SURE_AFFINE:  # and sum(w) = 1, as a heavily weighted extra row
            scale = np.sqrt(1e4 * np.trace(gram) / len(gram))
            design = np.vstack([design, scale * np.ones(len(gram))])
            target = np.append(target, scale)
        weights, _ = nnls(design, target)
    except (np.linalg.LinAlgError, RuntimeError, ValueError):
        return best
    if not np.all(np.isfinite(weights)) or risk(weights) > risk(best):
        return best
    return weights


def biharmonic_guide(unit: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Biharmonic filling of the ``missing`` pixels of a ``(C, Y, X)`` image (known pixels kept)."""
    from skimage.restoration import inpaint_biharmonic

    if not missing.any():
        return unit.astype(np.float32, copy=True)
    image = np.moveaxis(unit, 0, -1)
    out = inpaint_biharmonic(image, missing, channel_axis=-1)
    return np.ascontiguousarray(np.clip(np.moveaxis(out, -1, 0), 0.0, 1.0), dtype=np.float32)


#: Refinements of biharmonic filling by non-local means with the known pixels put back after
#: every pass (iterations, first and last filter sigma): one per candidate of the inpainting guide.
FILL_REFINEMENTS = ((5, 0.03, 0.01), (10, 0.05, 0.005), (20, 0.05, 0.002))


def fill_candidates(
    unit: np.ndarray,
    unseen: np.ndarray,
    needed: np.ndarray | None = None,
    budget: TimeBudget | None = None,
    again: bool = False,
) -> list[np.ndarray | None]:
    """Biharmonic filling of the ``unseen`` pixels, and its refinements (:data:`FILL_REFINEMENTS`).

    Each refinement filters the filled image with non-local means at a decreasing strength and
    puts the known pixels back after every pass, so patches found elsewhere in the image sharpen
    the filling where a smooth interpolation blurs edges and texture. ``needed``: which
    refinements to compute (``None``: all); the others are ``None``.

    With a ``budget``, a refinement is left out (``None``) when Stop is pressed, or when, from
    the time its passes have taken so far, it would not end before the deadline; with ``again``
    it must also leave time to be computed once more, with biharmonic filling, afterwards (the
    returned image's fill, from all known pixels). Biharmonic filling is always computed.
    """
    started = time.perf_counter()
    base = biharmonic_guide(unit, unseen)
    base_seconds = time.perf_counter() - started
    known = ~unseen

    def refine(iterations: int, first: float, last: float) -> np.ndarray | None:
        x = base.copy()
        began = time.perf_counter()
        for done, sigma in enumerate(np.geomspace(first, last, iterations)):
            if budget is not None:
                per_pass = (time.perf_counter() - began) / done if done else 0.0
                rest = per_pass * (iterations - done)
                if again:
                    rest += per_pass * iterations + base_seconds
                if not budget.allows(rest):
                    return None
            x = nlm_guide(x, float(sigma), 0.8, 5, 6)
            x[:, known] = unit[:, known]
        return x

    # the refinements are independent of each other: side by side on the CPU threads
    refinements = run_in_threads(
        [
            partial(refine, *settings) if needed is None or needed[i] else None
            for i, settings in enumerate(FILL_REFINEMENTS, start=1)
        ]
    )
    return [base, *refinements]


def fit_fill_weights(
    candidates: list[np.ndarray | None], unit: np.ndarray, held: np.ndarray, seed: int
) -> np.ndarray:
    """Weights of the fill candidates, fitted on ``held`` known pixels they did not see.

    Least squares on the held-out values. The blend replaces biharmonic filling (the first
    candidate) only when it is significantly better on held-out pixels whose weights were fitted
    on the other half of them (cross-fitted; a one-sided test at two standard errors of the mean
    paired difference per pixel, the channels' squared errors summed), so where the evidence is
    weak biharmonic filling comes back. Candidates that are ``None`` get weight 0.
    """
    plain = np.zeros(len(candidates))
    plain[0] = 1.0
    present = np.array([c is not None for c in candidates])
    if held.sum() < 8 or present.sum() < 2:
        return plain
    design = np.stack([c[:, held].ravel() for c in candidates if c is not None], axis=1).astype(np.float64)
    target = unit[:, held].ravel().astype(np.float64)
    half = np.broadcast_to(
        holdout_mask(held.shape, 0.5, seed + 7)[held], (unit.shape[0], int(held.sum()))
    ).ravel()

    def fit(rows: np.ndarray) -> np.ndarray:
        return np.linalg.lstsq(design[rows], target[rows], rcond=None)[0]

    crossed = np.where(half, design @ fit(~half), design @ fit(half))
    # per pixel (channels summed): the channels of one pixel are not independent samples
    diff = ((crossed - target) ** 2 - (design[:, 0] - target) ** 2).reshape(unit.shape[0], -1).sum(axis=0)
    if diff.mean() + 2.0 * diff.std() / np.sqrt(diff.size) >= 0:
        return plain
    weights = np.zeros(len(candidates))
    weights[present] = fit(np.ones(target.size, bool))  # candidates left out weigh nothing
    return weights


def blend_fills(candidates: list[np.ndarray | None], weights: np.ndarray) -> np.ndarray:
    """The weighted sum of fill candidates (those not computed must have weight 0), clipped to [0, 1]."""
    out = sum(float(w) * c for w, c in zip(weights, candidates, strict=True) if c is not None)
    return np.clip(out, 0.0, 1.0).astype(np.float32)
