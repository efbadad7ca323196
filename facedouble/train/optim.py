"""AdaBelief exactly as DeepFaceLab applies it, plus DFL's learning-rate dropout.

Why AdaBelief by default: it is what SAEHD trains with, so DFL users' learning rates and
schedules transfer unchanged and quality comparisons are like for like; its cost equals Adam's
(one extra subtraction per element). Like DFL it has no bias correction: m and v start at zero and
the first updates are small, a built-in warm-up. `--optimizer adam` selects torch's Adam.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class AdaBelief(torch.optim.Optimizer):
    """m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·(g-m)²;  p -= lr·m/(√v+ε) · dropout_mask.

    `lr_dropout` is the probability that an element's update is applied (DFL's "lr dropout" uses
    0.3); 1.0 disables it. The mask uses torch's global RNG, whose state checkpoints keep.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float = 5e-5,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6, lr_dropout: float = 1.0):
        if not 0.0 < lr_dropout <= 1.0:
            raise ValueError("lr_dropout must be in (0, 1]")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, lr_dropout=lr_dropout))

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102 (torch API)
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            for p in params:
                if not self.state[p]:
                    self.state[p]["m"] = torch.zeros_like(p)
                    self.state[p]["v"] = torch.zeros_like(p)
            ms = [self.state[p]["m"] for p in params]
            vs = [self.state[p]["v"] for p in params]
            b1, b2 = group["betas"]
            # Few passes over memory: this step is bandwidth-bound (tens of millions of elements).
            torch._foreach_lerp_(ms, grads, 1 - b1)  # m = b1·m + (1-b1)·g
            diff = torch._foreach_sub(grads, ms)
            torch._foreach_mul_(vs, b2)
            torch._foreach_addcmul_(vs, diff, diff, value=1 - b2)  # v = b2·v + (1-b2)·(g-m)²
            denom = torch._foreach_sqrt(vs)
            torch._foreach_add_(denom, group["eps"])
            if group["lr_dropout"] < 1.0:
                upd = torch._foreach_div(ms, denom)
                masks = [torch.bernoulli(torch.full_like(u, group["lr_dropout"])) for u in upd]
                torch._foreach_mul_(upd, masks)
                torch._foreach_add_(params, upd, alpha=-group["lr"])
            else:
                torch._foreach_addcdiv_(params, ms, denom, value=-group["lr"])
        return None


def make_optimizer(name: str, params: Iterable[torch.nn.Parameter], lr: float,
                   lr_dropout: float) -> torch.optim.Optimizer:
    """'adabelief' (DFL's) or 'adam' (torch's, foreach); both β 0.9/0.999."""
    from facedouble.errors import FacedoubleError

    if name == "adabelief":
        return AdaBelief(params, lr=lr, lr_dropout=lr_dropout)
    if name == "adam":
        if lr_dropout < 1.0:
            raise FacedoubleError("lr_dropout is only available with --optimizer adabelief")
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-7, foreach=True)
    raise FacedoubleError(f"unknown optimizer {name!r} (use adabelief or adam)")
