"""The small immutable view of a running optimisation that the loop yields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["EXPECTATION_AFTER_STEPS", "EXPECTATION_SECONDS", "Snapshot"]

#: Runs expected to take longer than this many seconds get a line saying what to expect.
EXPECTATION_SECONDS = 60.0

#: Steps measured before the run's length is estimated (the first steps run slow: allocation).
EXPECTATION_AFTER_STEPS = 5


@dataclass(frozen=True)
class Snapshot:
    """A small immutable view of a running optimisation.

    Attributes
    ----------
    step
        Steps done so far.
    total
        The step cap (``None`` when only a time cap applies).
    elapsed
        Seconds since the run started (set-up included).
    max_seconds
        The time cap, or ``None``.
    losses
        Latest value of each loss term (``"total"`` included).
    outputs
        Read-only numpy outputs in the caller's layout (exponential moving averages).
    done
        ``True`` on the last snapshot of a run.
    reason
        Why the run ended (``"steps"``, ``"time"``, ``"early-stop"``, ``"stopped"``); ``None`` while running.
    expected_seconds
        What the whole run is expected to take (set-up, plus the steps it typically needs to
        finish at the measured time per step, within its caps); ``None`` before a few steps.
    device
        The kind of device it runs on (``"cpu"``, ``"cuda"``, ``"mps"``).
    """

    step: int
    total: int | None
    elapsed: float
    max_seconds: float | None
    losses: Mapping[str, float]
    outputs: Mapping[str, np.ndarray]
    done: bool = False
    reason: str | None = None
    expected_seconds: float | None = None
    device: str = "cpu"

    def expectation(self, at_least: float | None = None) -> str | None:
        """A line for the user on a long run: how long to expect, and what would be faster.

        ``None`` for runs expected to take under ``at_least`` seconds (default
        :data:`EXPECTATION_SECONDS`), or before the estimate.
        """
        limit = EXPECTATION_SECONDS if at_least is None else at_least
        if self.expected_seconds is None or self.expected_seconds < limit or self.done:
            return None
        minutes = self.expected_seconds / 60
        when = f"about {minutes:.0f} min" if minutes >= 1.5 else f"about {self.expected_seconds:.0f} s"
        line = f"expect {when} for this run here"
        if self.device == "cpu":
            line += " on the CPU; a GPU, or a smaller region first, would be faster"
        return line

    @property
    def progress(self) -> float:
        """Fraction done in [0, 1], by steps or by time, whichever is further."""
        parts = [0.0]
        if self.total:
            parts.append(self.step / self.total)
        if self.max_seconds:
            parts.append(self.elapsed / self.max_seconds)
        return 1.0 if self.done else min(1.0, max(parts))

    @property
    def eta(self) -> float | None:
        """Estimated seconds left at most (``None`` before any progress)."""
        p = self.progress
        if self.done:
            return 0.0
        if p <= 0:
            return None
        return self.elapsed * (1 - p) / p
