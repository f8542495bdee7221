"""Adam with torch's fused kernel, without ``torch.optim``'s first-use import of ``torch._dynamo``.

``torch.optim.Optimizer`` wraps ``add_param_group``, ``zero_grad`` and the step functions in
``torch._disable_dynamo``, which imports ``torch._dynamo`` on a process's first optimiser: 2–4 s
of Python on a 2-core CPU, holding the GIL in turns of 130–700 ms (the napari viewer froze
that long during a first run). :class:`FusedAdam` calls the same fused kernel
(``torch._fused_adam_``) that ``torch.optim.Adam(fused=True)`` calls, with the same state (step
count as a float32 tensor, moment buffers zeroed like the parameters), so it gives the same
parameters bit for bit; it supports what the engine uses: parameter groups with their own
``lr``, default betas and eps, no weight decay, no AMSGrad.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["FusedAdam", "fused_adam_available"]

#: ``torch.optim.Adam``'s defaults.
BETAS = (0.9, 0.999)
EPS = 1e-8


def fused_adam_available(device: torch.device) -> bool:
    """Whether torch has the fused Adam kernel for ``device`` (CPU since torch 2.4, CUDA)."""
    return device.type in ("cpu", "cuda") and hasattr(torch, "_fused_adam_")


class FusedAdam:
    """Adam over parameter groups (``{"params": [...], "lr": float}``) with torch's fused kernel.

    Parameters
    ----------
    groups
        The task's parameter groups; ``lr`` per group (default ``1e-3``, as torch's).

    Attributes
    ----------
    param_groups
        The groups, each with its ``params`` as a list, ``lr``, ``betas`` and ``eps``.
    """

    def __init__(self, groups: list[dict[str, Any]]) -> None:
        self.param_groups: list[dict[str, Any]] = []
        for group in groups:
            unknown = set(group) - {"params", "lr"}
            if unknown:
                raise ValueError(f"FusedAdam takes groups of params and lr only, got {sorted(unknown)}")
            params = list(group["params"])
            self.param_groups.append(
                {"params": params, "lr": float(group.get("lr", 1e-3)), "betas": BETAS, "eps": EPS}
            )
        self.state: dict[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients (set them to ``None``, or zero them)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_().zero_()

    def _state(self, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(step, exp_avg, exp_avg_sq)`` of ``p``, created as ``torch.optim.Adam(fused=True)`` does."""
        found = self.state.get(p)
        if found is None:
            found = (
                torch.tensor(0.0, dtype=torch.float32, device=p.device),
                torch.zeros_like(p, memory_format=torch.preserve_format),
                torch.zeros_like(p, memory_format=torch.preserve_format),
            )
            self.state[p] = found
        return found

    @torch.no_grad()
    def step(self) -> None:
        """One Adam step of every parameter that has a gradient."""
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            by_device: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
            for p in params:
                by_device.setdefault((p.device, p.dtype), []).append(p)
            for members in by_device.values():
                states = [self._state(p) for p in members]
                steps = [s[0] for s in states]
                grads = [p.grad for p in members if p.grad is not None]  # all (``params`` has only those)
                torch._foreach_add_(steps, 1)
                beta1, beta2 = group["betas"]
                torch._fused_adam_(
                    members,
                    grads,
                    [s[1] for s in states],
                    [s[2] for s in states],
                    [],
                    steps,
                    amsgrad=False,
                    lr=group["lr"],
                    beta1=beta1,
                    beta2=beta2,
                    weight_decay=0.0,
                    eps=group["eps"],
                    maximize=False,
                    grad_scale=None,
                    found_inf=None,
                )
