"""Headless Python API: blocking functions and streaming generators over the one engine loop.

Every task comes twice: ``dd.denoise(...)`` runs to the end and returns a result;
``dd.denoise_stream(...)`` is a generator of :class:`~napari_doubledip.core.loop.Snapshot`
whose return value is that result (the napari widgets and the CLI use this form).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Generator
from typing import Any

import numpy as np

from .core.loop import Snapshot, optimise, run_to_end
from .core.tasks.base import Result, Task
from .core.tasks.denoise import DenoiseTask
from .core.tasks.inpaint import InpaintTask
from .core.tasks.reconstruction import ImageResult

__all__ = [
    "dehaze",
    "dehaze_stream",
    "denoise",
    "denoise_stream",
    "inpaint",
    "inpaint_stream",
    "remove_watermark",
    "remove_watermark_stream",
    "run_task",
    "segment",
    "segment_stream",
    "separate",
    "separate_stream",
    "stream_task",
]

#: Keyword options that belong to the optimisation loop rather than to a task.
LOOP_OPTIONS = frozenset(inspect.signature(optimise).parameters) - {"task"}


def _split_options(advanced: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``**advanced`` into (loop options, task options)."""
    loop = {k: v for k, v in advanced.items() if k in LOOP_OPTIONS}
    task = {k: v for k, v in advanced.items() if k not in LOOP_OPTIONS}
    return loop, task


def stream_task(task: Task, **loop_options: Any) -> Generator[Snapshot, None, Result]:
    """Snapshots of an optimisation of ``task`` (see :func:`~napari_doubledip.core.loop.optimise`)."""
    return optimise(task, **loop_options)


def run_task(task: Task, *, callback: Callable[[Snapshot], Any] | None = None, **loop_options: Any) -> Result:
    """Run ``task`` to the end; ``callback(snapshot)`` returning ``False`` stops it early."""
    stop = loop_options.pop("stop", None) or threading.Event()
    return run_to_end(optimise(task, stop=stop, **loop_options), callback, stop)


def _stream(task: Task, steps, max_seconds, seed, device, early_stop, loop: dict[str, Any]):
    """Start the engine loop on ``task`` with the common options."""
    return optimise(
        task, steps=steps, max_seconds=max_seconds, seed=seed, device=device, early_stop=early_stop, **loop
    )


def _blocking(
    stream: Callable[..., Generator[Snapshot, None, Any]], *args: Any, callback, **options: Any
) -> Any:
    """Run ``stream(*args, **options)`` to the end with a stop event the callback can trigger."""
    stop = options.pop("stop", None) or threading.Event()
    return run_to_end(stream(*args, stop=stop, **options), callback, stop)


def denoise_stream(
    image: np.ndarray,
    *,
    steps: int | None = None,
    max_seconds: float | None = None,
    net: Any = "default",
    seed: int = 0,
    device: str = "auto",
    early_stop: bool = True,
    **advanced: Any,
) -> Generator[Snapshot, None, ImageResult]:
    """Streaming form of :func:`denoise`: yields snapshots (output key ``"image"``), returns the result."""
    loop, opts = _split_options(advanced)
    task = DenoiseTask(image, net=net, **opts)
    return _stream(task, steps, max_seconds, seed, device, early_stop, loop)


def denoise(
    image: np.ndarray,
    *,
    steps: int | None = None,
    max_seconds: float | None = None,
    net: Any = "default",
    seed: int = 0,
    device: str = "auto",
    early_stop: bool = True,
    callback: Callable[[Snapshot], Any] | None = None,
    **advanced: Any,
) -> ImageResult:
    """Denoise an image with a Deep Image Prior.

    Parameters
    ----------
    image
        2-D gray or ``(Y, X, C)`` image of any dtype and range, at least 16x16.
    steps, max_seconds
        Caps on optimisation steps and wall time (neither: 3000 steps).
    net
        ``"default"`` (fast), ``"dip-classic"``, ``"doubledip"``, a dict of settings or a NetConfig.
    seed
        Seeds everything random: same seed, same device, same result.
    device
        ``"auto"`` (CUDA, then Apple MPS, then CPU) or a torch device string.
    early_stop
        Stop once the fit reaches the estimated noise level (or its outputs stop settling).
    callback
        Called with each :class:`Snapshot`; returning ``False`` stops the run.
    **advanced
        Task options (``lr``, ``reg_noise``, ``input_std``, ``noise_sigma``) and loop options
        (``ema``, ``min_interval``, ``snapshot_every``, ``threads``, ``precision``, ``stop``, ...).

    Returns
    -------
    ImageResult
        ``.image`` (input's shape, dtype, range), ``.history``, ``.params``.
    """
    return _blocking(
        denoise_stream,
        image,
        callback=callback,
        steps=steps,
        max_seconds=max_seconds,
        net=net,
        seed=seed,
        device=device,
        early_stop=early_stop,
        **advanced,
    )


def inpaint_stream(
    image: np.ndarray,
    mask: np.ndarray,
    *,
    steps: int | None = None,
    max_seconds: float | None = None,
    net: Any = "default",
    seed: int = 0,
    device: str = "auto",
    early_stop: bool = True,
    **advanced: Any,
) -> Generator[Snapshot, None, ImageResult]:
    """Streaming form of :func:`inpaint`: yields snapshots (output key ``"image"``), returns the result."""
    loop, opts = _split_options(advanced)
    task = InpaintTask(image, mask, net=net, **opts)
    return _stream(task, steps, max_seconds, seed, device, early_stop, loop)


def inpaint(
    image: np.ndarray,
    mask: np.ndarray,
    *,
    steps: int | None = None,
    max_seconds: float | None = None,
    net: Any = "default",
    seed: int = 0,
    device: str = "auto",
    early_stop: bool = True,
    callback: Callable[[Snapshot], Any] | None = None,
    **advanced: Any,
) -> ImageResult:
    """Fill the missing pixels of an image with a Deep Image Prior.

    Parameters
    ----------
    image
        As for :func:`denoise`.
    mask
        ``(Y, X)``; True/nonzero where a pixel is missing. The loss sees known pixels only.
    **advanced
        As for :func:`denoise`, plus ``keep_known`` (default True: known pixels are returned as given).

    Returns
    -------
    ImageResult
        ``.image``, ``.history``, ``.params``.

    See Also
    --------
    denoise : the other keyword options.
    """
    return _blocking(
        inpaint_stream,
        image,
        mask,
        callback=callback,
        steps=steps,
        max_seconds=max_seconds,
        net=net,
        seed=seed,
        device=device,
        early_stop=early_stop,
        **advanced,
    )


def separate_stream(
    images: np.ndarray | list[np.ndarray],
    *,
    steps: int | None = None,
    max_seconds: float | None = None,
    net: Any = "default",
    seed: int = 0,
    device: str = "auto",
    early_stop: bool = True,
    **advanced: Any,
) -> Generator[Snapshot, None, Any]:
    """Streaming form of :func:`separate`: snapshots with keys "layer_a", "layer_b", "alphas"."""
    from .core.tasks.separate import SeparateTask

    loop, opts = _split_options(advanced)
    task = SeparateTask(images, net=net, **opts)
    return _stream(task, steps, max_seconds, seed, device, early_stop, loop)


def separate(
    images: np.ndarray | list[np.ndarray],
    *,
    steps: int | None = None,
    max_seconds: float | None = None,
    net: Any = "default",
    seed: int = 0,
    device: str = "auto",
    early_stop: bool = True,
    callback: Callable[[Snapshot], Any] | None = None,
    **advanced: Any,
) -> Any:
    """Separate one image, or N >= 2 mixtures of the same two layers, into two transparent layers.

    Parameters
    ----------
    images
        One image (it is taken as the average of its two layers), or a list of N >= 2 images
        of one shape, each ``alpha_n * a + (1 - alpha_n) * b`` for the same layers ``a``, ``b``.
    steps, max_seconds, net, seed, device, early_stop, callback
        As for :func:`denoise` (neither cap: 2000 steps).
    **advanced
        Task options (``lr``, ``alpha_lr``, ``exclusion_weight``, ``exclusion_scales``,
        ``reg_noise``, ``input_std``, ``initial_alphas``, ``learn_single_alpha``) and loop options.

    Returns
    -------
    SeparationResult
        ``.layers`` (layer_a, layer_b) in the first image's layout, ``.alphas`` (N,) in (0, 1),
        ``.history``, ``.params``.
    """
    return _blocking(
        separate_stream,
        images,
        callback=callback,
        steps=steps,
        max_seconds=max_seconds,
        net=net,
        seed=seed,
        device=device,
        early_stop=early_stop,
        **advanced,
    )


def remove_watermark_stream(
    images: np.ndarray | list[np.ndarray],
    hint: np.ndarray | None = None,
    *,
    steps: int | None = None,
    max_seconds: float | None = None,
    net: Any = "default",
    seed: int = 0,
    device: str = "auto",
    early_stop: bool = True,
    **advanced: Any,
) -> Generator[Snapshot, None, Any]:
    """Streaming form of :func:`remove_watermark`: keys "clean_0".."clean_{K-1}", "watermark", "mask"."""
    from .core.tasks.watermark import WatermarkTask

    loop, opts = _split_options(advanced)
    task = WatermarkTask(images, hint=hint, net=net, **opts)
    return _stream(task, steps, max_seconds, seed, device, early_stop, loop)


def remove_watermark(
    images: np.ndarray | list[np.ndarray],
    hint: np.ndarray | None = None,
    *,
    steps: int | None = None,
    max_seconds: float | None = None,
    net: Any = "default",
    seed: int = 0,
    device: str = "auto",
    early_stop: bool = True,
    callback: Callable[[Snapshot], Any] | None = None,
    **advanced: Any,
) -> Any:
    """Remove a watermark shared by K >= 2 images (or by one image, given a hint).

    Parameters
    ----------
    images
        K >= 2 images with the same watermark at the same place (sizes may differ by a few
        pixels: they are aligned by their centres), or one image with ``hint``.
    hint
        Optional ``(Y, X)`` array, nonzero where the watermark may be (a box or a rough mask).
    steps, max_seconds, net, seed, device, early_stop, callback
        As for :func:`denoise` (neither cap: 2000 steps).
    **advanced
        Task options (``watermark`` = "white" | "black" | "learn" | a colour, ``mask_net``,
        ``lr``, ``mask_lr_factor``, ``exclusion_weight``, ``opaque_from``, ``opaque_full``,
        ``max_size_difference``, ...) and loop options.

    Returns
    -------
    WatermarkResult
        ``.images`` (K, each with its input's shape/dtype), ``.watermark``, ``.mask`` (float,
        1 = watermark, on the common centred area), ``.offsets``, ``.colour``, ``.history``, ``.params``.
    """
    return _blocking(
        remove_watermark_stream,
        images,
        hint,
        callback=callback,
        steps=steps,
        max_seconds=max_seconds,
        net=net,
        seed=seed,
        device=device,
        early_stop=early_stop,
        **advanced,
    )


def segment_stream(
    image: np.ndarray,
    hints: np.ndarray | None = None,
    *,
    steps: int | None = None,
    max_seconds: float | None = None,
    net: Any = "doubledip",
    seed: int = 0,
    device: str = "auto",
    early_stop: bool = True,
    **advanced: Any,
) -> Generator[Snapshot, None, Any]:
    """Streaming form of :func:`segment`: keys "foreground", "background", "mask", "labels"."""
    from .core.tasks.segment import SegmentTask

    loop, opts = _split_options(advanced)
    task = SegmentTask(image, hints, net=net, **opts)
    return _stream(task, steps, max_seconds, seed, device, early_stop, loop)


def segment(
    image: np.ndarray,
    hints: np.ndarray | None = None,
    *,
    steps: int | None = None,
    max_seconds: float | None = None,
    net: Any = "doubledip",
    seed: int = 0,
    device: str = "auto",
    early_stop: bool = True,
    callback: Callable[[Snapshot], Any] | None = None,
    **advanced: Any,
) -> Any:
    """Split an image into a foreground and a background layer and a mask (Double-DIP).

    Parameters
    ----------
    image
        2-D gray or ``(Y, X, C)`` image of any dtype and range.
    hints
        Optional ``(Y, X)`` label image: 0 = unknown, 1 = foreground, 2 = background (a few
        painted strokes). Without hints the segmentation is unsupervised (see the README for
        when that works).
    steps, max_seconds, net, seed, device, early_stop, callback
        As for :func:`denoise`.
    **advanced
        Task options (``edge`` = "auto" | "background" | "free": whether unpainted pixels on the
        image's edge count as background, for an object inside the frame; ``prior``,
        ``mask_net``, ``lr``, ``mask_lr_factor`` and the loss weights of
        :class:`~napari_doubledip.core.tasks.segment.SegmentTask`) and loop options.

    Returns
    -------
    SegmentResult
        ``.layers`` (foreground, background), full-frame in the input's layout; ``.mask`` float
        in [0, 1] (1 = foreground); ``.labels`` uint8 (1 = foreground); ``.history``, ``.params``.
    """
    return _blocking(
        segment_stream,
        image,
        hints,
        callback=callback,
        steps=steps,
        max_seconds=max_seconds,
        net=net,
        seed=seed,
        device=device,
        early_stop=early_stop,
        **advanced,
    )


def dehaze_stream(
    image: np.ndarray,
    airlight: Any = None,
    *,
    steps: int | None = None,
    max_seconds: float | None = None,
    net: Any = "default",
    seed: int = 0,
    device: str = "auto",
    early_stop: bool = True,
    **advanced: Any,
) -> Generator[Snapshot, None, Any]:
    """Streaming form of :func:`dehaze`: keys "image" (haze-free) and "transmission"."""
    from .core.tasks.dehaze import DehazeTask

    loop, opts = _split_options(advanced)
    task = DehazeTask(image, airlight, net=net, **opts)
    return _stream(task, steps, max_seconds, seed, device, early_stop, loop)


def dehaze(
    image: np.ndarray,
    airlight: Any = None,
    *,
    steps: int | None = None,
    max_seconds: float | None = None,
    net: Any = "default",
    seed: int = 0,
    device: str = "auto",
    early_stop: bool = True,
    callback: Callable[[Snapshot], Any] | None = None,
    **advanced: Any,
) -> Any:
    """Remove haze: ``I = t * J + (1 - t) * A`` with the transmission ``t`` and the clear image ``J``.

    Parameters
    ----------
    image
        2-D gray or ``(Y, X, C)`` hazy image of any dtype and range.
    airlight
        The haze colour ``A`` (a scalar or one value per channel, in the image's range); estimated
        from the dark channel when ``None``.
    steps, max_seconds, net, seed, device, early_stop, callback
        As for :func:`denoise`.
    **advanced
        Task options of :class:`~napari_doubledip.core.tasks.dehaze.DehazeTask` and loop options.

    Returns
    -------
    DehazeResult
        ``.image`` (input's shape, dtype, range), ``.transmission`` float ``(Y, X)`` in (0, 1],
        ``.airlight`` (per channel, in the image's range), ``.history``, ``.params``.
    """
    return _blocking(
        dehaze_stream,
        image,
        airlight,
        callback=callback,
        steps=steps,
        max_seconds=max_seconds,
        net=net,
        seed=seed,
        device=device,
        early_stop=early_stop,
        **advanced,
    )
