"""Running independent CPU filters side by side (scikit-image's filters release the GIL)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = ["run_in_threads"]

T = TypeVar("T")


def run_in_threads(calls: Sequence[Callable[[], T] | None]) -> list[T | None]:
    """Each call's result (``None`` for ``None``), in order, on as many threads as torch's CPU thread count.

    The classical filters here (scikit-image's non-local means, wavelets) run on one core and
    release the GIL: on a machine of N cores, N of them at once take about 1/N of the time. The
    results do not depend on the number of threads. Without torch imported (no run going on) the
    calls run one after the other.
    """
    todo = [call for call in calls if call is not None]
    torch = sys.modules.get("torch")
    workers = min(len(todo), int(torch.get_num_threads()) if torch is not None else 1)
    if workers <= 1:
        done = [call() for call in todo]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="doubledip-filter") as pool:
            done = list(pool.map(lambda call: call(), todo))
    results = iter(done)
    return [None if call is None else next(results) for call in calls]
