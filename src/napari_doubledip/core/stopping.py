"""When to stop a run: the rules the optimisation loop applies to its outputs.

:class:`WindowedVariance` watches how much the outputs still move (for tasks without held-out
data); :class:`HeldOutStop` watches the error on held-out pixels (for tasks that have them).
"""

from __future__ import annotations

from collections import deque

import torch

__all__ = ["HeldOutStop", "WindowedVariance"]


class WindowedVariance:
    """Early stop by windowed moving variance (ES-WMV, Wang et al. 2021).

    The variance of the last ``window`` outputs (sampled every ``stride`` steps) falls while
    the net fits structure and rises once it starts fitting noise; stop when it has not
    reached a new minimum for ``patience`` steps, and return the outputs kept at the minimum.
    """

    def __init__(self, window: int = 16, stride: int = 5, patience: int = 400) -> None:
        self.window = window
        self.stride = stride
        self.patience = patience
        self.frames: deque[torch.Tensor] = deque(maxlen=window)
        self.best = float("inf")
        self.best_step = 0

    def update(self, step: int, frame: torch.Tensor) -> tuple[bool, bool]:
        """Feed one step's output; return ``(new_minimum, should_stop)``."""
        if step % self.stride:
            return False, False
        self.frames.append(frame.detach().float().clone())
        if len(self.frames) < self.window:
            return False, False
        stack = torch.stack(tuple(self.frames))
        var = float(stack.var(dim=0, unbiased=False).mean())
        if var < self.best:
            self.best, self.best_step = var, step
            return True, False
        return False, step - self.best_step >= self.patience


class HeldOutStop:
    """Keep the outputs with the lowest held-out error; stop once it has not improved for a while.

    The held-out error (:meth:`Task.validation_loss <napari_doubledip.core.tasks.base.Task.validation_loss>`)
    is measured every ``every`` steps on the averaged outputs. The run stops when the last new
    minimum is ``max(min_patience, patience_ratio * best_step)`` steps old: a run that is still
    improving keeps going, and one whose minimum came late waits longer before giving up. It
    never stops before ``first_patience`` steps: that long the generator may take to beat the
    first outputs (step 0: a guided task's classical estimate; a plain DIP needs hundreds of
    steps, and a tiny early gain must not start the shorter patience).
    """

    def __init__(
        self, every: int = 5, min_patience: int = 100, patience_ratio: float = 0.5, first_patience: int = 400
    ) -> None:
        self.every = every
        self.min_patience = min_patience
        self.patience_ratio = patience_ratio
        self.first_patience = first_patience
        self.best = float("inf")
        self.best_step = 0

    def update(self, step: int, loss: float) -> tuple[bool, bool]:
        """Feed the held-out error at ``step``; return ``(new_minimum, should_stop)``."""
        if loss < self.best:
            self.best, self.best_step = loss, step
            return True, False
        if step < self.first_patience:  # the generator always gets this long to beat the start
            return False, False
        if self.best_step == 0:
            return False, True
        patience = max(self.min_patience, self.patience_ratio * self.best_step)
        return False, step - self.best_step >= patience
