"""Transparency separation: two layer generators and one mixing weight per input (Double-DIP)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.options import GeneratorOptions, option
from . import Demo, DemoSample, Inputs, Output, Sample, TaskEntry
from ._common import psnr

__all__ = ["ENTRY", "SeparateOptions"]


@dataclass(frozen=True, kw_only=True)
class SeparateOptions(GeneratorOptions):
    """Options of :class:`~napari_doubledip.core.tasks.separate.SeparateTask` (see its docstring)."""

    alpha_lr: float = option(0.01, "Adam learning rate of the mixing-weight logits")
    exclusion_weight: float = option(0.1, "weight of the exclusion loss between the layers")
    exclusion_scales: int = option(3, "scales of the exclusion loss")
    initial_alphas: Any = option(None, "starting mixing weights, N values in (0, 1) (None: 0.6 to 0.4)")
    learn_single_alpha: bool = option(
        False, "with one image, learn its weight too (else fixed at 0.5)", recorded=False
    )

    def check(self) -> None:
        """Check the separation options' ranges."""
        super().check()
        if self.alpha_lr <= 0:
            raise ValueError("lr and alpha_lr must be > 0")
        if self.exclusion_weight < 0:
            raise ValueError(f"exclusion_weight must be >= 0, got {self.exclusion_weight}")


def _layers(size: int) -> list:
    from .. import samples

    images, _layers = samples.mixtures(size)
    return [(img, {"name": f"mixture {i + 1}"}, "image") for i, img in enumerate(images)]


def _demo(size: int) -> DemoSample:
    from .. import samples

    images, (a, b) = samples.mixtures(size=size)
    return DemoSample(
        inputs={f"input_{k}": im for k, im in enumerate(images)},
        truth={"true_layer_a": a, "true_layer_b": b},
        args=(images,),
    )


def _score(sample: DemoSample, result: Any) -> tuple[dict[str, Any], dict[str, float], list[str]]:
    a, b = sample.truth["true_layer_a"], sample.truth["true_layer_b"]
    la, lb = result.layers
    straight = (psnr(la, a) + psnr(lb, b)) / 2
    swapped = (psnr(la, b) + psnr(lb, a)) / 2
    pa, pb = (psnr(la, a), psnr(lb, b)) if straight >= swapped else (psnr(lb, a), psnr(la, b))
    before = float(np.mean([max(psnr(im, a), psnr(im, b)) for im in sample.inputs.values()]))
    metrics = {"psnr_inputs_best_db": before, "psnr_layer_a_db": pa, "psnr_layer_b_db": pb}
    line = f"PSNR against the true layers: {before:.2f} dB (best input) -> {pa:.2f} / {pb:.2f} dB (layers)"
    return {"layer_a": la, "layer_b": lb}, metrics, [line]


ENTRY = TaskEntry(
    name="separate",
    title="Separate layers",
    api="separate",
    task="napari_doubledip.core.tasks.separate:SeparateTask",
    steps=2000,  # the engine class's default_steps (a test checks)
    options=SeparateOptions,
    help="split mixtures of the same two transparent layers into those layers (one group)",
    description="Split mixtures of the same two transparent layers (e.g. a reflection on a window) "
    "into the two layers. Tick one image, or two or more mixtures of one scene.",
    outputs=(Output("layer_a", "layer A", file="_layer_a"), Output("layer_b", "layer B", file="_layer_b")),
    inputs=Inputs(group=True),
    sample=Sample("mixtures", "Two mixtures (Separate layers)", _layers),
    demo=Demo(_demo, _score),
    summary="Separate one image, or N >= 2 mixtures of the same two layers, into two transparent layers.",
    doc="""images
    One image (it is taken as the average of its two layers), or a list of N >= 2 images
    of one shape, each ``alpha_n * a + (1 - alpha_n) * b`` for the same layers ``a``, ``b``.
    A ``(K, Y, X)`` stack is refused (pass ``list(stack)``). Images of different dtypes are
    each scaled by their own black-to-white range; the layers come back in the first's.""",
    order=3,
    result="SeparationResult",
)
