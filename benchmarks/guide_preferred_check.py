"""One run each, its returned image with and without the guide-preferred rule, at fixed steps.

    PYTHONPATH=src python benchmarks/guide_preferred_check.py STEPS NAME:SIZE:TASK[,...]

``NAME`` is a scikit-image photo (centre crop as ``scaling.py``; ``NAME-tl``: the top-left crop)
or a ``.png``/``.jpg`` file of ``../shared/data/reference-demos`` at its own size (``SIZE`` ignored),
``TASK`` one of ``denoise``, ``inpaint50``, ``inpaint80`` (``scaling.py``'s inputs, seed 0). The
run is the engine's; its last ``outputs`` call is made twice, with
``ImageReconstructionTask.guide_preferred`` as it is ("new") and forced off ("old": the guide
plus the share of the generator's departure fitted on the held-out pixels), so both images come
from the same training. Prints the peer (NLM as scikit-image's example sets it, or biharmonic
filling), old, new, the best step and whether the guide was preferred.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from bench_common import psnr
from scaling import crop, load_file, make_input
from skimage import data
from skimage.restoration import denoise_nl_means, estimate_sigma, inpaint_biharmonic

from napari_doubledip import api
from napari_doubledip.core.tasks import reconstruction
from napari_doubledip.core.tasks.denoise import DenoiseTask
from napari_doubledip.core.tasks.inpaint import InpaintTask

DEMOS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "reference-demos"
STATE: dict = {"off": False, "old": None, "preferred": None}
_rule = reconstruction.ImageReconstructionTask.guide_preferred


def _guide_preferred(self, out):
    return False if STATE["off"] else _rule(self, out)


def _recording(outputs):
    def wrapped(self, out):
        new = outputs(self, out)
        STATE["off"] = True
        try:
            STATE["old"] = outputs(self, out)["image"]
        finally:
            STATE["off"] = False
        STATE["preferred"] = _rule(self, out)
        return new

    return wrapped


reconstruction.ImageReconstructionTask.guide_preferred = _guide_preferred
for task_class in (InpaintTask, DenoiseTask):
    task_class.outputs = _recording(task_class.outputs)


def top_left(name: str, size: int) -> np.ndarray:
    image = getattr(data, name)() / 255.0
    return np.ascontiguousarray(image[:size, :size], dtype=np.float32)


def main() -> None:
    steps = int(sys.argv[1])
    for case in sys.argv[2].split(","):
        name, size, task = case.split(":")
        if name.endswith((".png", ".jpg")):
            clean = load_file(str(DEMOS / name))
        elif name.endswith("-tl"):
            clean = top_left(name[:-3], int(size))
        else:
            clean = crop(name, int(size))
        args, _ = make_input(task, clean)
        axis = -1 if clean.ndim == 3 else None
        if task == "denoise":
            result = api.denoise(args[0], steps=steps, seed=0, threads=2)
            s = estimate_sigma(args[0], channel_axis=axis, average_sigmas=True)
            peer = denoise_nl_means(
                args[0], h=0.8 * s, sigma=s, fast_mode=True, patch_size=5, patch_distance=6, channel_axis=axis
            )
        else:
            result = api.inpaint(*args, steps=steps, seed=0, threads=2)
            peer = inpaint_biharmonic(args[0], args[1], channel_axis=axis)
        print(
            f"{case} steps {steps} peer {psnr(peer, clean):.3f} old {psnr(STATE['old'], clean):.3f} "
            f"new {psnr(result.image, clean):.3f} best_step {result.params.get('best_step')} "
            f"guide_preferred {STATE['preferred']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
