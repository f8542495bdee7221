"""Pieces the built-in task descriptions share: PSNR, the PSNR demo score, the box parser (numpy only)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["parse_box", "psnr", "psnr_score"]


def psnr(a: Any, b: Any) -> float:
    """Peak signal-to-noise ratio in dB of two unit-range images."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))


def psnr_score(sample: Any, result: Any, **extra: Any) -> tuple[dict[str, Any], dict[str, float], list[str]]:
    """Demo score of a single-image restoration: PSNR of input and result against the clean photo."""
    before = psnr(sample.inputs["input"], sample.truth["clean"])
    after = psnr(result.image, sample.truth["clean"])
    arrays = {"result": result.image, **extra}
    metrics = {"psnr_input_db": before, "psnr_result_db": after}
    return (
        arrays,
        metrics,
        [f"PSNR against the clean photo: {before:.2f} dB (input) -> {after:.2f} dB (result)"],
    )


def parse_box(text: str) -> list[float]:
    """``"Y0,X0,Y1,X1"`` (a CLI box: rows Y0 to Y1, columns X0 to X1, in pixels) as four numbers."""
    parts = [p for p in str(text).replace(" ", ",").split(",") if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4:
        raise ValueError(f"a box is Y0,X0,Y1,X1 (four numbers), got {text!r}")
    return values
