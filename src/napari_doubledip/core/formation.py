"""Image-formation models shared by the tasks: the blend ``m * a + (1 - m) * b`` and its inverses.

Segmentation (``I = m * fg + (1 - m) * bg``), transparency separation (``I_n = alpha_n * a + (1 -
alpha_n) * b``), watermark removal (``I = m * w + (1 - m) * y``) and dehazing (``I = t * J + (1 - t)
* A``) all explain the image as one blend of two layers. The functions accept torch tensors and
numpy arrays alike (elementwise arithmetic with broadcasting).
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

__all__ = ["blend", "solve_first", "solve_second"]

ArrayT = TypeVar("ArrayT", torch.Tensor, np.ndarray)


def blend(weight: ArrayT, first: ArrayT | float, second: ArrayT | float) -> ArrayT:
    """The mixture ``weight * first + (1 - weight) * second``.

    Parameters
    ----------
    weight
        The first layer's weight per pixel (a mask, an opacity, a transmission) or per image.
    first, second
        The two layers (broadcastable against ``weight``).

    Returns
    -------
    The blended image, of ``weight``'s kind (tensor or array).
    """
    return weight * first + (1 - weight) * second


def _at_least(x: ArrayT, floor: float | None) -> ArrayT:
    if floor is None:
        return x
    if isinstance(x, torch.Tensor):
        return x.clamp_min(floor)
    return np.maximum(x, floor)


def solve_first(image: ArrayT, weight: ArrayT, second: ArrayT, floor: float | None = None) -> ArrayT:
    """The first layer of :func:`blend` given the image, the weight and the second layer.

    ``first = (image - (1 - weight) * second) / weight``, e.g. the clear image of a hazy one from
    its transmission and airlight.

    Parameters
    ----------
    image, weight, second
        As in :func:`blend`.
    floor
        Smallest divisor (``None``: divide by ``weight`` as it is).

    Returns
    -------
    The first layer (not clipped).
    """
    return (image - (1 - weight) * second) / _at_least(weight, floor)


def solve_second(image: ArrayT, weight: ArrayT, first: ArrayT, floor: float | None = None) -> ArrayT:
    """The second layer of :func:`blend` given the image, the weight and the first layer.

    ``second = (image - weight * first) / (1 - weight)``, e.g. the image under a watermark from
    the watermark's opacity and colour.

    Parameters
    ----------
    image, weight, first
        As in :func:`blend`.
    floor
        Smallest divisor ``1 - weight`` (``None``: no floor); it keeps opaque pixels finite.

    Returns
    -------
    The second layer (not clipped).
    """
    return (image - weight * first) / _at_least(1.0 - weight, floor)
