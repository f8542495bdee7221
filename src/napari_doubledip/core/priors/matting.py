"""A shared watermark's opacity from K images by the gradient-sparsity prior, and its inversion.

The matting model of Dekel et al. (CVPR 2017, "On the effectiveness of visible watermarks"):
``I_k = a * W + (1 - a) * J_k`` with the opacity ``a`` and colour ``W`` shared by the K images
and ``J_k`` the clean photos, whose gradients are sparse. Given the mark's support, the opacity
is the one that leaves the fewest edges in the K recovered photos; each image then gets its own
gain per channel on that opacity (real marks are not blended identically into every photo:
through JPEG's colour subsampling and the blend's colour space a white mark adds more to a
photo's brighter channels than ``a * (1 - J)``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["fit_gains", "invert_with_gains", "matte_candidate", "shared_colour_matte", "sparse_opacity"]

#: Largest opacity the fit and the inversion use (the inversion divides by ``1 - a``).
MAX_ALPHA = 0.9


def _adam(param: torch.Tensor, lr: float, *more: torch.Tensor) -> Any:
    """Adam on one parameter (or a few), without ``torch.optim`` where torch has the fused kernel.

    ``torch.optim``'s first use imports ``torch._dynamo``: seconds of GIL-holding imports beside
    the viewer (see :mod:`~napari_doubledip.core.adam`).
    """
    from ..adam import FusedAdam, fused_adam_available

    if fused_adam_available(param.device):
        return FusedAdam([{"params": [param, *more], "lr": lr}])
    return torch.optim.Adam([param, *more], lr=lr)  # pragma: no cover - older torch


def _edge_energy(j: torch.Tensor, a: torch.Tensor, eps: float) -> torch.Tensor:
    """Charbonnier sum of ``(1 - a) * grad(J)`` (forward differences over the last two axes).

    Weighting by ``1 - a`` (at the pair's mean) counts the photo's own edges as they are in
    the input whatever the opacity, so a higher opacity is not penalised for amplifying them.
    """
    gy = (j[..., 1:, :] - j[..., :-1, :]) * (1 - 0.5 * (a[..., 1:, :] + a[..., :-1, :]))
    gx = (j[..., :, 1:] - j[..., :, :-1]) * (1 - 0.5 * (a[..., :, 1:] + a[..., :, :-1]))
    return torch.sqrt(gy * gy + eps * eps).sum() + torch.sqrt(gx * gx + eps * eps).sum()


def sparse_opacity(
    units: np.ndarray,
    support: np.ndarray,
    init: np.ndarray,
    colour: np.ndarray,
    iters: int = 400,
    smooth: float = 0.02,
    eps: float = 1e-3,
    lr: float = 0.02,
) -> np.ndarray:
    """The shared opacity inside ``support`` that leaves the fewest edges in the K recovered photos.

    Minimises, over ``a`` (zero off ``support``, at most :data:`MAX_ALPHA`), the Charbonnier
    norm of ``(1 - a) * grad(J_k)`` summed over the K images, with
    ``J_k = (I_k - a * W) / (1 - a)`` on the channel mean (the mark's luminance edges; JPEG keeps
    those sharp), plus ``smooth`` times the opacity's own total variation per image. Adam from
    ``init`` (e.g. :func:`~napari_doubledip.core.postprocess.refine_opacity` over the images filled
    in under the strokes: the energy is not convex, and a start at zero stays near it), on the
    support's bounding box.

    Parameters
    ----------
    units
        ``(K, C, Y, X)`` aligned images in unit range.
    support
        Boolean ``(Y, X)``: where the mark may be.
    init
        ``(Y, X)`` starting opacity.
    colour
        ``(C,)`` the mark's colour in unit range (its channel mean is used).
    iters, smooth, eps, lr
        Adam steps, weight of the opacity's total variation, Charbonnier's epsilon, step size.

    Returns
    -------
    numpy.ndarray
        ``(Y, X)`` float32 opacity in ``[0, MAX_ALPHA]``, zero off ``support``.
    """
    out = np.zeros(support.shape, np.float32)
    if not support.any():
        return out
    ys, xs = np.nonzero(support)
    box = (
        slice(max(ys.min() - 2, 0), ys.max() + 3),
        slice(max(xs.min() - 2, 0), xs.max() + 3),
    )
    grey = torch.from_numpy(np.asarray(units, np.float64).mean(1)[:, box[0], box[1]])
    region = torch.from_numpy(support[box].astype(np.float64))
    white = float(np.mean(colour))
    q = torch.nn.Parameter(torch.from_numpy(np.clip(np.asarray(init, np.float64)[box], 0.0, MAX_ALPHA)))
    opt = _adam(q, lr)
    k = grey.shape[0]
    with torch.enable_grad():
        for _ in range(iters):
            a = q.clamp(0.0, MAX_ALPHA) * region
            energy = _edge_energy((grey - a * white) / (1 - a), a, eps)
            dy, dx = a[1:] - a[:-1], a[:, 1:] - a[:, :-1]
            energy = energy + smooth * k * (
                torch.sqrt(dy * dy + eps * eps).sum() + torch.sqrt(dx * dx + eps * eps).sum()
            )
            opt.zero_grad()
            energy.backward()
            opt.step()
    out[box] = (q.detach().clamp(0.0, MAX_ALPHA) * region).numpy()
    return out


def fit_gains(
    units: np.ndarray,
    alpha: np.ndarray,
    colour: np.ndarray,
    low: float = 0.5,
    high: float = 1.5,
    step: float = 0.02,
    eps: float = 1e-3,
) -> np.ndarray:
    """Per image and channel, the gain ``g`` on the shared opacity that leaves the fewest edges.

    For each image ``k`` and channel ``c``, ``g`` on a grid from ``low`` to ``high`` minimising
    the energy of :func:`sparse_opacity` for ``J = (I - g a W) / (1 - g a)`` on the support's
    bounding box. 1 everywhere for a mark blended the same way into every photo.

    Returns
    -------
    numpy.ndarray
        ``(K, C)`` gains.
    """
    units = np.asarray(units, np.float64)
    gains = np.ones(units.shape[:2])
    if not (alpha > 0).any():
        return gains
    ys, xs = np.nonzero(alpha > 0)
    box = (slice(max(ys.min() - 2, 0), ys.max() + 3), slice(max(xs.min() - 2, 0), xs.max() + 3))
    a = torch.from_numpy(np.asarray(alpha, np.float64)[box])
    grid = np.arange(low, high + step / 2, step)
    for k in range(units.shape[0]):
        for c in range(units.shape[1]):
            img = torch.from_numpy(units[k, c][box])
            w = float(colour[c])
            energies = []
            for g in grid:
                al = (g * a).clamp(0.0, MAX_ALPHA)
                energies.append(float(_edge_energy((img - al * w) / (1 - al), al, eps)))
            gains[k, c] = grid[int(np.argmin(energies))]
    return gains


def invert_with_gains(
    units: np.ndarray,
    alpha: np.ndarray,
    gains: np.ndarray,
    colour: np.ndarray,
    under: np.ndarray,
    opaque_from: float,
    opaque_full: float,
) -> np.ndarray:
    """Undo ``I = g a W + (1 - g a) J`` per image and channel; ``under`` where ``a`` is nearly opaque.

    Parameters
    ----------
    units, under
        ``(K, C, Y, X)`` images and a guess at what lies under an opaque mark, unit range.
    alpha
        ``(Y, X)`` shared opacity.
    gains
        ``(K, C)`` from :func:`fit_gains`.
    colour
        ``(C,)`` the mark's colour.
    opaque_from, opaque_full
        Opacities where the blend towards ``under`` starts and where it is complete.

    Returns
    -------
    numpy.ndarray
        ``(K, C, Y, X)`` float32 in [0, 1].
    """
    units = np.asarray(units, np.float64)
    a = np.asarray(alpha, np.float64)[None, None]
    al = np.clip(np.asarray(gains, np.float64)[:, :, None, None] * a, 0.0, MAX_ALPHA)
    w = np.asarray(colour, np.float64)[None, :, None, None]
    inverted = (units - al * w) / (1.0 - al)
    blend = np.clip((a - opaque_from) / (opaque_full - opaque_from), 0.0, 1.0)
    return np.clip((1 - blend) * inverted + blend * np.asarray(under, np.float64), 0.0, 1.0).astype(
        np.float32
    )


def matte_candidate(
    units: np.ndarray,
    support: np.ndarray,
    start: np.ndarray,
    colour: np.ndarray,
    under: np.ndarray,
    opaque_from: float,
    opaque_full: float,
    gain_spread: float,
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray] | None, np.ndarray]:
    """The matting model's cleaned images: one shared opacity, a gain per image and channel.

    :func:`sparse_opacity` from ``start`` over ``support``, :func:`fit_gains`, inverted by
    :func:`invert_with_gains` (``under`` where nearly opaque), in the mark's ``colour``.

    Returns
    -------
    candidate, gains
        ``(cleaned, opacity, colour planes)``, or ``None`` when every gain is within
        ``gain_spread`` of 1 (the mark is blended alike into every photo, which a single
        opacity models); and the ``(K, C)`` gains.
    """
    alpha = sparse_opacity(units, support, start, colour)
    gains = fit_gains(units, alpha, colour)
    if np.abs(gains - 1.0).max() <= gain_spread:
        return None, gains
    cleaned = invert_with_gains(units, alpha, gains, colour, under, opaque_from, opaque_full)
    flat = np.broadcast_to(np.asarray(colour)[:, None, None], (len(colour), *alpha.shape)).astype(np.float32)
    return (cleaned, alpha, flat), gains


def shared_colour_matte(
    units: np.ndarray,
    support: np.ndarray,
    alpha: np.ndarray,
    colour: np.ndarray,
    iters: int = 400,
    smooth_alpha: float = 0.1,
    smooth_colour: float = 0.3,
    eps: float = 1e-3,
    lr: float = 0.02,
) -> tuple[np.ndarray, np.ndarray]:
    """A mark of any colours shared by K images: its opacity AND colour per pixel, jointly over the K.

    The matting model ``I_k = a * W + (1 - a) * J_k`` with ``a`` (``(Y, X)``) and ``W``
    (``(C, Y, X)``) shared by the K images: at each pixel there are K equations per channel for
    the mark's two unknowns per channel, and the photos' gradients are sparse. Minimises over
    ``a`` (zero off ``support``, at most :data:`MAX_ALPHA`) and ``W`` (in (0, 1), through a
    sigmoid) the Charbonnier norm of ``(1 - a) * grad(J_k)`` summed over the K images and the
    C channels, plus ``smooth_alpha`` times the total variation of ``a`` (per image and
    channel) and ``smooth_colour`` times that of the premultiplied colour ``a * W`` (per
    image); Adam on the support's bounding box. Unlike :func:`sparse_opacity` the mark need
    not be white: a text mark's dark outline and shadow, a logo in colour.

    Parameters
    ----------
    units
        ``(K, C, Y, X)`` aligned images in unit range.
    support
        Boolean ``(Y, X)``: where the mark may be.
    alpha, colour
        The start: ``(Y, X)`` opacity and ``(C, Y, X)`` (or ``(C,)``) colour; the energy is not
        convex. A colour at 0 or 1 is moved to 0.02 / 0.98 (its logit must be finite).
    iters, smooth_alpha, smooth_colour, eps, lr
        Adam steps, the weights of the two total variations, Charbonnier's epsilon, step size.

    Returns
    -------
    alpha, colour
        ``(Y, X)`` float32 opacity in ``[0, MAX_ALPHA]``, zero off ``support``, and
        ``(C, Y, X)`` float32 colour in (0, 1) (the start's off the support's bounding box).
    """
    units = np.asarray(units, np.float64)
    channels = units.shape[1]
    given = np.asarray(colour, np.float64)
    given = given if given.ndim == 3 else given.reshape(-1, 1, 1)
    start = np.clip(np.broadcast_to(given, (channels, *support.shape)), 0.02, 0.98)
    a_out = np.zeros(support.shape, np.float32)
    w_out = start.astype(np.float32)
    if not support.any():
        return a_out, w_out
    ys, xs = np.nonzero(support)
    box = (slice(max(ys.min() - 2, 0), ys.max() + 3), slice(max(xs.min() - 2, 0), xs.max() + 3))
    img = torch.from_numpy(np.ascontiguousarray(units[:, :, box[0], box[1]]))
    k = img.shape[0]
    region = torch.from_numpy(support[box].astype(np.float64))
    q = torch.nn.Parameter(torch.from_numpy(np.clip(np.asarray(alpha, np.float64)[box], 0.0, MAX_ALPHA)))
    logit = torch.nn.Parameter(torch.logit(torch.from_numpy(np.ascontiguousarray(start[:, box[0], box[1]]))))
    opt = _adam(q, lr, logit)

    def tv(x: torch.Tensor) -> torch.Tensor:
        dy, dx = x[..., 1:, :] - x[..., :-1, :], x[..., :, 1:] - x[..., :, :-1]
        return torch.sqrt(dy * dy + eps * eps).sum() + torch.sqrt(dx * dx + eps * eps).sum()

    with torch.enable_grad():
        for _ in range(iters):
            a = q.clamp(0.0, MAX_ALPHA) * region
            premult = a * torch.sigmoid(logit)
            energy = _edge_energy((img - premult) / (1 - a), a, eps)
            energy = energy + smooth_alpha * k * channels * tv(a) + smooth_colour * k * tv(premult)
            opt.zero_grad()
            energy.backward()
            opt.step()
    a_out[box] = (q.detach().clamp(0.0, MAX_ALPHA) * region).numpy()
    w_out[:, box[0], box[1]] = torch.sigmoid(logit.detach()).numpy()
    return a_out, w_out
