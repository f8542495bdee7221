"""Losses shared by the Double-DIP tasks."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ExclusionLoss", "image_gradients"]


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences along X and Y of a ``(..., Y, X)`` tensor (shapes shrink by one)."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


class ExclusionLoss(nn.Module):
    """Exclusion loss of Zhang, Ng & Chen (2018), as used by Double-DIP.

    Two layers that come from different sources rarely have edges in the same places. At each
    of ``scales`` resolutions (bilinear halving), for the X and the Y gradients::

        Phi(T, R) = tanh(lam_T |grad T|) * tanh(lam_R |grad R|)
        lam_T = sqrt(||grad R|| / ||grad T||),   lam_R = 1 / lam_T

    and the loss is the mean over scales and directions of the root-mean-square of ``Phi``
    (a size-independent Frobenius norm). It is symmetric in its arguments and zero when either
    layer is constant.

    Parameters
    ----------
    scales
        Number of resolutions (>= 1; Double-DIP uses 3).
    eps
        Keeps the normalisation and the square root finite for flat layers.
    """

    def __init__(self, scales: int = 3, eps: float = 1e-8) -> None:
        super().__init__()
        if scales < 1:
            raise ValueError(f"scales must be >= 1, got {scales}")
        self.scales = scales
        self.eps = eps

    def _phi_rms(self, gt: torch.Tensor, gr: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(-3, 0))  # per sample: channels, Y, X
        norm_t = (gt.pow(2).sum(dim=dims, keepdim=True) + self.eps).sqrt()
        norm_r = (gr.pow(2).sum(dim=dims, keepdim=True) + self.eps).sqrt()
        lam_t = (norm_r / norm_t).sqrt()
        phi = torch.tanh(lam_t * gt.abs()) * torch.tanh(gr.abs() / lam_t)
        return (phi.pow(2).mean(dim=dims) + self.eps).sqrt()

    def forward(self, t: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """Loss of two ``(B, C, Y, X)`` layers (C may differ if one is 1); mean over the batch."""
        t, r = t.float(), r.float()
        terms = []
        for level in range(self.scales):
            if level:
                t = F.interpolate(t, scale_factor=0.5, mode="bilinear", align_corners=False)
                r = F.interpolate(r, scale_factor=0.5, mode="bilinear", align_corners=False)
            if min(t.shape[-2:]) < 2:
                break
            (tx, ty), (rx, ry) = image_gradients(t), image_gradients(r)
            terms += [self._phi_rms(tx, rx), self._phi_rms(ty, ry)]
        return torch.stack(terms).mean()


# --- mask terms (segmentation) ---------------------------------------------------------------
__all__ += ["binarising_loss", "contrast_weights", "edge_aware_smoothness", "mask_balance_loss"]


def binarising_loss(mask: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of ``m (1 - m)``: 0.25 for an undecided mask (0.5), 0 for a binary one.

    A bounded stand-in for Double-DIP's ``(sum |m - 0.5|)^-1``: that term is unbounded near 0.5
    and gives no reason to prefer one binary side, while this one has a gradient ``1 - 2m``
    that fades as pixels decide, so it sharpens a mask without forcing it to one constant.
    ``weight`` (broadcastable, e.g. a valid-pixel map) restricts the mean.
    """
    term = mask.float() * (1 - mask.float())
    if weight is None:
        return term.mean()
    weight = weight.expand_as(term)
    return (term * weight).sum() / weight.sum().clamp_min(1e-8)


def mask_balance_loss(
    mask: torch.Tensor, weight: torch.Tensor | None = None, low: float = 0.02, high: float = 0.98
) -> torch.Tensor:
    """Squared hinge keeping a mask's mean within ``[low, high]`` (zero inside).

    Stops the trivial Double-DIP solution where one generator explains the whole image.
    """
    m = mask.float()
    if weight is None:
        mean = m.mean()
    else:
        weight = weight.expand_as(m)
        mean = (m * weight).sum() / weight.sum().clamp_min(1e-8)
    return torch.relu(low - mean) ** 2 + torch.relu(mean - high) ** 2


def edge_aware_smoothness(mask: torch.Tensor, weight_x: torch.Tensor, weight_y: torch.Tensor) -> torch.Tensor:
    """Contrast-sensitive total variation: ``mean(w_x |dm/dx|) + mean(w_y |dm/dy|)``.

    With ``w = exp(-beta |dI|^2)`` of the image, mask edges cost little where the image has an
    edge and much in flat regions (the pairwise term of graph-cut / random-walker segmentation).
    """
    mx, my = image_gradients(mask.float())
    return (weight_x * mx.abs()).mean() + (weight_y * my.abs()).mean()


def contrast_weights(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights ``exp(-beta |dI|^2)`` along X and Y of a ``(1, C, Y, X)`` image, for :func:`edge_aware_smoothness`.

    ``|dI|^2`` sums the channels' squared forward differences; ``beta = 1 / (2 mean |dI|^2)`` over
    all differences of both directions, so the weights adapt to the image's contrast.
    """
    gx, gy = image_gradients(image)
    dx, dy = gx.pow(2).sum(dim=1, keepdim=True), gy.pow(2).sum(dim=1, keepdim=True)
    mean = torch.cat([dx.flatten(), dy.flatten()]).mean()
    beta = 1.0 / (2.0 * float(mean.clamp_min(1e-8)))
    return torch.exp(-beta * dx), torch.exp(-beta * dy)


# --- cross-entropies of a soft mask (segmentation) ---------------------------------------------
__all__ += ["PROBABILITY_EPS", "labelled_cross_entropy", "soft_cross_entropy", "sum_of_squares"]

#: A mask is clamped this far inside (0, 1) before its logarithm is taken (keeps the losses finite).
PROBABILITY_EPS = 1e-5


def _clamped(mask: torch.Tensor) -> torch.Tensor:
    return mask.clamp(PROBABILITY_EPS, 1 - PROBABILITY_EPS)


def labelled_cross_entropy(
    mask: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, count: float
) -> torch.Tensor:
    """Binary cross-entropy of a soft mask on labelled pixels: ``-sum(P log m + N log(1 - m)) / count``.

    Parameters
    ----------
    mask
        Soft mask in [0, 1].
    positive, negative
        0/1 maps (broadcastable) of the pixels labelled 1 and 0.
    count
        The number of labelled pixels the sum is divided by.

    Returns
    -------
    The scalar loss.
    """
    m = _clamped(mask)
    return -(positive * torch.log(m) + negative * torch.log(1 - m)).sum() / count


def soft_cross_entropy(
    mask: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, count: torch.Tensor | float
) -> torch.Tensor:
    """Weighted cross-entropy of a soft mask towards a soft target: ``-sum(w (p log m + (1 - p) log(1 - m))) / count``.

    Parameters
    ----------
    mask
        Soft mask in [0, 1].
    target
        Per-pixel probability ``p`` the mask is pulled towards.
    weight
        Per-pixel weight (e.g. the target's confidence, zero on padding).
    count
        What the sum is divided by.

    Returns
    -------
    The scalar loss.
    """
    m = _clamped(mask)
    return -(weight * (target * torch.log(m) + (1 - target) * torch.log(1 - m))).sum() / count


def sum_of_squares(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``sum(weight * (pred - target)^2)``: the numerator of a masked mean squared error.

    Parameters
    ----------
    pred, target
        Tensors of one shape.
    weight
        Per-pixel weight, broadcastable.

    Returns
    -------
    The scalar sum.
    """
    return (((pred - target) ** 2) * weight).sum()
