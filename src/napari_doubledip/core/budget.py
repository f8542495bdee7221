"""A run's time budget and stop flag, as seen by a task's set-up.

A set-up computes a classical start (biharmonic filling, non-local means) and then optional
refinements of it. On a large frame the refinements take longer than a user's whole time budget
(a 1036x692 photo's inpainting refinements: about a minute on two cores), and before this budget
they could not be interrupted: Stop waited for them, and a 30-s run returned after 40 s. Optional
work now asks the budget first and is left out where it would not end in time or Stop was pressed;
the start it would have refined comes back instead (never worse than the classical peer).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

__all__ = ["StopFlag", "TimeBudget"]


class StopFlag(Protocol):
    """Anything with ``is_set()``, e.g. :class:`threading.Event`."""

    def is_set(self) -> bool:
        """Whether the run should stop."""
        ...


@dataclass(frozen=True)
class TimeBudget:
    """When a run must end (``deadline``, a :func:`time.perf_counter` value) and its stop flag.

    Attributes
    ----------
    stop
        Set when the user asks the run to stop (``None``: never).
    deadline
        The :func:`time.perf_counter` time the run's ``max_seconds`` ends at (``None``: no limit).
    """

    stop: StopFlag | None = None
    deadline: float | None = None

    def stopped(self) -> bool:
        """Whether Stop was pressed."""
        return self.stop is not None and bool(self.stop.is_set())

    def seconds_left(self) -> float:
        """Seconds until the deadline (infinite without one; negative once past it)."""
        return float("inf") if self.deadline is None else self.deadline - time.perf_counter()

    def allows(self, seconds: float) -> bool:
        """Whether work of about ``seconds`` may start: not stopped, and it ends before the deadline."""
        return not self.stopped() and seconds <= self.seconds_left()
