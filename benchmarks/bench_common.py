"""Helpers shared by the benchmark scripts (run them from the repository root or this folder)."""

from __future__ import annotations

import ast

import numpy as np

__all__ = ["iou", "parse_sets", "psnr"]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two unit-range arrays (capped at 120 dB for identical arrays)."""
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float(10 * np.log10(1.0 / max(mse, 1e-12)))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def parse_sets(items: list[str]) -> dict:
    """``["key=value", ...]`` from ``--set`` options into a dict (values as Python literals when they parse)."""
    options = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key] = value
    return options
