"""AdaBelief exactly as DeepFaceLab applies it, plus DFL's learning-rate dropout.

Why AdaBelief by default: it is what SAEHD trains with, so DFL users' learning rates and
schedules transfer unchanged and quality comparisons are like for like; its cost equals Adam's
(one extra subtraction per element). Like DFL it has no bias correction: m and v start at zero and
the first updates are small, a built-in warm-up. `--optimizer adam` selects torch's Adam.

The step is memory-bound: tens of millions of elements of weights, gradients and two moments. Run
eagerly it makes five passes over memory per tensor (~90 ms a step for quick96's 38 M parameters on
2 CPU cores); compiled by torch.compile (kernel="compiled") the same code becomes one fused pass per
tensor (~26 ms), at a one-off compile of 5-40 s. See `OPTIMIZER_KERNELS`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Sequence

import torch
from torch.utils._python_dispatch import _get_current_dispatch_mode

from facedouble.log import get_logger

log = get_logger("facedouble.train")

OPTIMIZER_KERNELS = ("auto", "compiled", "eager")


def adabelief_update(params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor], ms: Sequence[torch.Tensor],
                     vs: Sequence[torch.Tensor], lr: float, b1: float, b2: float, eps: float,
                     keep: float = 1.0) -> None:
    """m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·(g-m)²;  p -= lr·m/(√v+ε), in place, tensor by tensor.

    With `keep` < 1 (lr-dropout) each element's update is applied with that probability. One tensor at a
    time keeps the temporaries small (cache-resident) when eager, and lets torch.compile fuse each
    tensor's update into a single pass.
    """
    for p, g, m, v in zip(params, grads, ms, vs, strict=True):
        m.lerp_(g, 1 - b1)
        d = g - m
        v.mul_(b2).addcmul_(d, d, value=1 - b2)
        if keep < 1.0:
            update = m / v.sqrt().add_(eps)
            p.add_(update.mul_(torch.bernoulli(torch.full_like(update, keep))), alpha=-lr)
        else:
            p.addcdiv_(m, v.sqrt().add_(eps), value=-lr)


_compiled_fn: Callable[..., None] | None = None


def _compiled() -> Callable[..., None]:
    global _compiled_fn
    if _compiled_fn is None:
        _compiled_fn = torch.compile(adabelief_update, fullgraph=True, dynamic=False)
    return _compiled_fn


def compiler_available() -> bool:
    """True if torch.compile can build CPU kernels here (Inductor needs a C++ compiler)."""
    return any(shutil.which(c) for c in ("g++", "c++", "clang++"))


class AdaBelief(torch.optim.Optimizer):
    """DFL's AdaBelief (see `adabelief_update`) with optional learning-rate dropout.

    `lr_dropout` is the probability that an element's update is applied (DFL's "lr dropout" uses
    0.3); 1.0 disables it. The mask uses torch's global RNG, whose state checkpoints keep.
    `kernel`: "eager" or "compiled" (one fused pass per tensor; falls back to eager, with a warning,
    if compiling fails before any tensor was written; a failure after a write re-raises, since
    re-running the step would apply part of it twice). lr-dropout steps always run eagerly so their
    masks follow torch's RNG.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float = 5e-5,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6, lr_dropout: float = 1.0,
                 kernel: str = "eager"):
        if not 0.0 < lr_dropout <= 1.0:
            raise ValueError("lr_dropout must be in (0, 1]")
        if kernel not in ("compiled", "eager"):
            raise ValueError(f"kernel must be 'compiled' or 'eager', not {kernel!r}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, lr_dropout=lr_dropout))
        self.kernel = kernel
        self._compiled_once = False

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102 (torch API)
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            for p in params:
                if not self.state[p]:
                    self.state[p]["m"] = torch.zeros_like(p)
                    self.state[p]["v"] = torch.zeros_like(p)
            grads = [p.grad for p in params]
            ms = [self.state[p]["m"] for p in params]
            vs = [self.state[p]["v"] for p in params]
            (b1, b2), lr, eps = group["betas"], group["lr"], group["eps"]
            if group["lr_dropout"] < 1.0:
                adabelief_update(params, grads, ms, vs, lr, b1, b2, eps, keep=group["lr_dropout"])
            elif self.kernel == "compiled" and _get_current_dispatch_mode() is None:
                # (dispatch modes, e.g. FLOP counters, run the eager step: dynamo skips frames under them)
                self._compiled_update(params, grads, ms, vs, lr, b1, b2, eps)
            else:
                adabelief_update(params, grads, ms, vs, lr, b1, b2, eps)
        return None

    def _compiled_update(self, *args) -> None:
        if not self._compiled_once:
            log.info("compiling the optimizer step (once; 5-40 s, cached for later runs)")
            self._compiled_once = True
        params, _, ms, vs = args[:4]
        state = [*params, *ms, *vs]
        # Every in-place write bumps a tensor's version counter: reading them is free, unlike a snapshot.
        versions = [t._version for t in state]
        try:
            _compiled()(*args)
        except Exception as exc:
            if any(t._version != before for t, before in zip(state, versions, strict=True)):
                # The step failed part-way through: some weights or moments are already updated, and
                # re-running the whole step eagerly would apply their update twice.
                raise
            reason = next(iter(str(exc).strip().splitlines()), "")[:200] or type(exc).__name__
            log.warning("compiled optimizer step unavailable (%s); using the eager step", reason)
            self.kernel = "eager"
            adabelief_update(*args)


def make_optimizer(name: str, params: Iterable[torch.nn.Parameter], lr: float,
                   lr_dropout: float, kernel: str = "eager") -> torch.optim.Optimizer:
    """'adabelief' (DFL's) or 'adam' (torch's; its fused CPU kernel on CPU); both β 0.9/0.999.

    `kernel` ("eager" or "compiled") applies to AdaBelief; torch's Adam has its own fused kernel.
    """
    from facedouble.errors import FacedoubleError

    if name == "adabelief":
        return AdaBelief(params, lr=lr, lr_dropout=lr_dropout, kernel=kernel)
    if name == "adam":
        if lr_dropout < 1.0:
            raise FacedoubleError("lr_dropout is only available with --optimizer adabelief")
        params = list(params)
        on_cpu = all(p.device.type == "cpu" for p in params)
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-7,
                                fused=True if on_cpu else None, foreach=None if on_cpu else True)
    raise FacedoubleError(f"unknown optimizer {name!r} (use adabelief or adam)")


def resolve_kernel(requested: str, device: torch.device, optimizer: str, lr_dropout: float,
                   long_session: bool) -> str:
    """The AdaBelief kernel for "auto"/"compiled"/"eager".

    auto = compiled on a CPU with a C++ compiler when the session may be long enough to repay the
    one-off compile (5-40 s against ~60 ms saved a step at quick96's size), eager otherwise.
    On a GPU the eager step (a few hundred small kernels) is cheap beside the model, so auto keeps it.
    """
    from facedouble.errors import FacedoubleError

    if requested not in OPTIMIZER_KERNELS:
        raise FacedoubleError(f"unknown optimizer kernel {requested!r} (use {', '.join(OPTIMIZER_KERNELS)})")
    if requested != "auto":
        return requested
    fits = optimizer == "adabelief" and lr_dropout >= 1.0 and device.type == "cpu"
    return "compiled" if fits and long_session and compiler_available() else "eager"
