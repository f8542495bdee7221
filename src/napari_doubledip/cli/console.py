"""Exit statuses and the messages of the command line (stderr)."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "first_line", "fmt_seconds", "say"]

#: Exit statuses.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def say(message: str) -> None:
    """Print a progress or error line on stderr."""
    print(message, file=sys.stderr, flush=True)


def first_line(text: Any) -> str:
    """The first line of an error message."""
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""


def fmt_seconds(s: float | None) -> str:
    """``4.2s``, ``42s``, ``3m05s``, ``1h02m``."""
    if s is None:
        return "?"
    s = float(s)
    if s < 60:
        return f"{s:.0f}s" if s >= 10 else f"{s:.1f}s"
    m, s = divmod(int(round(s)), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"
