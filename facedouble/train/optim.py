"""DeepFaceLab's optimizers as DFL applies them: AdaBelief (SAEHD) and RMSprop (Quick96), with lr-dropout.

Why these two: they are what DFL's models train with (SAEHD: AdaBelief at 5e-5; Quick96: RMSprop at
2e-4 with lr-dropout 0.3), so DFL users' learning rates and schedules transfer unchanged and speed or
quality comparisons are of implementations, not recipes. Each preset's recipe is in
`facedouble.train.models.presets.TRAIN_RECIPES`. Like DFL neither has bias correction: the moments start
at zero. `--optimizer adam` selects torch's Adam.

lr-dropout (DFL's `lr_dropout`, a keep probability): every element's update is applied with that
probability, drawn afresh each step; the moments always see the whole gradient. The keep masks come from
torch's global RNG (which checkpoints save): on a CPU one torch draw seeds numpy's SFC64 generator, whose
raw 64-bit words, split into two 32-bit lanes, give the masks (2x faster than torch's own CPU generator and
3-4x faster than a float draw per element; 16- or 8-bit lanes would halve the words again, but Inductor does
not vectorise their compare, which then costs more than it saves). On a GPU torch draws the words itself.

The step is memory-bound: tens of millions of elements of weights, gradients and moments. Run eagerly it
makes five or six passes over memory per tensor (~90 ms a step for quick96's 38 M parameters on 2 CPU
cores); compiled by torch.compile (kernel="compiled") the same code becomes one fused pass per tensor
(~26 ms), at a one-off compile of 5-40 s. The masks are drawn eagerly and passed in, so both kernels
apply exactly the same update. See `OPTIMIZER_KERNELS`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from torch.utils._python_dispatch import _get_current_dispatch_mode

from facedouble.log import get_logger

log = get_logger("facedouble.train")

OPTIMIZER_KERNELS = ("auto", "compiled", "eager")
_LANES = 2 ** 32  # values of one 32-bit lane of the mask's random words


def _keep_threshold(keep: float) -> int:
    """An element is kept when its signed 32-bit random lane is below this (probability `keep`, to 2^-32)."""
    return min(round(keep * _LANES) - _LANES // 2, _LANES // 2 - 1)


def keep_masks(params: Sequence[torch.Tensor], keep: float) -> list[torch.Tensor] | None:
    """One int32 tensor of uniform random lanes per parameter (same shape and layout), or None if keep = 1.

    Seeded by (CPU) or drawn from (GPU) torch's global RNG; compare with `_keep_threshold(keep)` to get the mask.
    """
    if keep >= 1.0 or not params:
        return None
    sizes = [p.numel() for p in params]
    count, device = (sum(sizes) + 1) // 2, params[0].device
    if device.type == "cpu":
        seed = int(torch.empty((), dtype=torch.int64).random_(-2 ** 63, None)) & (2 ** 64 - 1)
        words = torch.from_numpy(np.random.SFC64(seed).random_raw(count).view(np.int64))
    else:
        words = torch.empty(count, dtype=torch.int64, device=device).random_(-2 ** 63, None)
    lanes = words.view(torch.int32)  # full 64-bit words: both lanes uniform
    out, offset = [], 0
    for p, n in zip(params, sizes, strict=True):
        cl = not p.is_contiguous() and p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last)
        # in the parameter's own memory order, so the fused kernel reads both in one sweep
        out.append(lanes.as_strided(p.shape, p.stride(), offset) if cl else lanes[offset:offset + n].view(p.shape))
        offset += n
    return out


def adabelief_update(params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor], ms: Sequence[torch.Tensor],
                     vs: Sequence[torch.Tensor], lr: float, b1: float, b2: float, eps: float,
                     masks: Sequence[torch.Tensor] | None = None, threshold: int = 0) -> None:
    """m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·(g-m)²;  p -= lr·m/(√v+ε), in place, tensor by tensor.

    With `masks` (lr-dropout, from `keep_masks`) an element's update is applied only where its lane is
    below `threshold`. One tensor at a time keeps the temporaries small (cache-resident) when eager, and
    lets torch.compile fuse each tensor's update into a single pass.
    """
    for i, (p, g, m, v) in enumerate(zip(params, grads, ms, vs, strict=True)):
        m.lerp_(g, 1 - b1)
        d = g - m
        v.mul_(b2).addcmul_(d, d, value=1 - b2)
        if masks is not None:
            update = m / v.sqrt().add_(eps)
            p.add_(torch.where(masks[i] < threshold, update, 0.0), alpha=-lr)
        else:
            p.addcdiv_(m, v.sqrt().add_(eps), value=-lr)


def rmsprop_update(params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor], accs: Sequence[torch.Tensor],
                   lr: float, rho: float, eps: float, masks: Sequence[torch.Tensor] | None = None,
                   threshold: int = 0) -> None:
    """a = ρ·a + (1-ρ)·g²;  p -= lr·g/(√a+ε), in place, tensor by tensor (DFL's RMSprop: no momentum,
    not centred, ε outside the root, the new accumulator in the denominator).

    `masks`/`threshold`: lr-dropout as in `adabelief_update`.
    """
    for i, (p, g, a) in enumerate(zip(params, grads, accs, strict=True)):
        a.mul_(rho).addcmul_(g, g, value=1 - rho)
        if masks is not None:
            update = g / a.sqrt().add_(eps)
            p.add_(torch.where(masks[i] < threshold, update, 0.0), alpha=-lr)
        else:
            p.addcdiv_(g, a.sqrt().add_(eps), value=-lr)


_compiled_fns: dict[Callable[..., None], Callable[..., None]] = {}


def _compile(fn: Callable[..., None]) -> Callable[..., None]:
    if fn not in _compiled_fns:
        _compiled_fns[fn] = torch.compile(fn, fullgraph=True, dynamic=False)
    return _compiled_fns[fn]


def _compiled() -> Callable[..., None]:
    """The compiled AdaBelief step (built on first use)."""
    return _compile(adabelief_update)


def _compiled_rmsprop() -> Callable[..., None]:
    """The compiled RMSprop step (built on first use)."""
    return _compile(rmsprop_update)


def compiler_available() -> bool:
    """True if torch.compile can build CPU kernels here (Inductor needs a C++ compiler)."""
    return any(shutil.which(c) for c in ("g++", "c++", "clang++"))


class _DFLOptimizer(torch.optim.Optimizer):
    """What AdaBelief and RMSprop share: per-parameter moment tensors, lr-dropout, eager/compiled kernels.

    `kernel`: "eager" or "compiled" (one fused pass per tensor; falls back to eager, with a warning, if
    compiling fails before any tensor was written; a failure after a write re-raises, since re-running the
    step would apply part of it twice).
    """

    moments: tuple[str, ...] = ()

    def __init__(self, params: Iterable[torch.nn.Parameter], defaults: dict, kernel: str):
        if not 0.0 < defaults["lr_dropout"] <= 1.0:
            raise ValueError("lr_dropout must be in (0, 1]")
        if kernel not in ("compiled", "eager"):
            raise ValueError(f"kernel must be 'compiled' or 'eager', not {kernel!r}")
        super().__init__(params, defaults)
        self.kernel = kernel
        self._compiled_once = False

    def _eager(self, *args) -> None:
        raise NotImplementedError

    def _compiled_kernel(self) -> Callable[..., None]:
        raise NotImplementedError

    def _hyper(self, group: dict) -> tuple:
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102 (torch API)
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            for p in params:
                if not self.state[p]:
                    for name in self.moments:
                        self.state[p][name] = torch.zeros_like(p)
            tensors = [params, [p.grad for p in params]] + [[self.state[p][n] for p in params] for n in self.moments]
            keep = group["lr_dropout"]
            args = (*tensors, *self._hyper(group), keep_masks(params, keep), _keep_threshold(keep))
            if self.kernel == "compiled" and _get_current_dispatch_mode() is None:
                # (dispatch modes, e.g. FLOP counters, run the eager step: dynamo skips frames under them)
                self._compiled_update(*args)
            else:
                self._eager(*args)
        return None

    def _compiled_update(self, *args) -> None:
        if not self._compiled_once:
            log.info("compiling the optimizer step (once; 5-40 s, cached for later runs)")
            self._compiled_once = True
        state = [t for ts in (args[0], *args[2:2 + len(self.moments)]) for t in ts]
        # Every in-place write bumps a tensor's version counter: reading them is free, unlike a snapshot.
        versions = [t._version for t in state]
        try:
            self._compiled_kernel()(*args)
        except Exception as exc:
            if any(t._version != before for t, before in zip(state, versions, strict=True)):
                # The step failed part-way through: some weights or moments are already updated, and
                # re-running the whole step eagerly would apply their update twice.
                raise
            reason = next(iter(str(exc).strip().splitlines()), "")[:200] or type(exc).__name__
            log.warning("compiled optimizer step unavailable (%s); using the eager step", reason)
            self.kernel = "eager"
            self._eager(*args)


class AdaBelief(_DFLOptimizer):
    """DFL's AdaBelief (see `adabelief_update`) with optional learning-rate dropout.

    `lr_dropout` is the probability that an element's update is applied (DFL's "lr dropout" uses
    0.3); 1.0 disables it. `kernel`: see `_DFLOptimizer`.
    """

    moments = ("m", "v")

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float = 5e-5,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6, lr_dropout: float = 1.0,
                 kernel: str = "eager"):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, lr_dropout=lr_dropout), kernel)

    def _hyper(self, group: dict) -> tuple:
        return group["lr"], *group["betas"], group["eps"]

    def _eager(self, *args) -> None:
        adabelief_update(*args)

    def _compiled_kernel(self) -> Callable[..., None]:
        return _compiled()


class RMSprop(_DFLOptimizer):
    """DFL's RMSprop (see `rmsprop_update`; its defaults ρ 0.9, ε 1e-7) with optional learning-rate dropout.

    Quick96 trains with lr 2e-4 and lr_dropout 0.3. Gradient clipping (DFL's clipnorm) is the trainer's
    global `clipnorm`, applied before the step as DFL does. `kernel`: see `_DFLOptimizer`.
    """

    moments = ("acc",)

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float = 1e-3, rho: float = 0.9,
                 eps: float = 1e-7, lr_dropout: float = 1.0, kernel: str = "eager"):
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, lr_dropout=lr_dropout), kernel)

    def _hyper(self, group: dict) -> tuple:
        return group["lr"], group["rho"], group["eps"]

    def _eager(self, *args) -> None:
        rmsprop_update(*args)

    def _compiled_kernel(self) -> Callable[..., None]:
        return _compiled_rmsprop()


def _adam(params: Iterable[torch.nn.Parameter], lr: float, lr_dropout: float, kernel: str) -> torch.optim.Optimizer:
    from facedouble.errors import FacedoubleError

    if lr_dropout < 1.0:
        raise FacedoubleError("lr_dropout is only available with --optimizer adabelief or rmsprop")
    params = list(params)
    on_cpu = all(p.device.type == "cpu" for p in params)
    return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-7,
                            fused=True if on_cpu else None, foreach=None if on_cpu else True)


# The optimizers by their CLI name: (params, lr, lr_dropout, kernel) -> optimizer.
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adabelief": lambda params, lr, lr_dropout, kernel: AdaBelief(params, lr=lr, lr_dropout=lr_dropout, kernel=kernel),
    "rmsprop": lambda params, lr, lr_dropout, kernel: RMSprop(params, lr=lr, lr_dropout=lr_dropout, kernel=kernel),
    "adam": _adam,
}
# The ones with DFL's lr-dropout and the eager/compiled kernels.
DFL_OPTIMIZERS = ("adabelief", "rmsprop")


def make_optimizer(name: str, params: Iterable[torch.nn.Parameter], lr: float,
                   lr_dropout: float, kernel: str = "eager") -> torch.optim.Optimizer:
    """'adabelief' (DFL's SAEHD), 'rmsprop' (DFL's Quick96) or 'adam' (torch's; its fused CPU kernel on CPU).

    `kernel` ("eager" or "compiled") applies to AdaBelief and RMSprop; torch's Adam has its own fused kernel.
    """
    from facedouble.errors import FacedoubleError

    if name not in OPTIMIZERS:
        raise FacedoubleError(f"unknown optimizer {name!r} (use {', '.join(OPTIMIZERS)})")
    return OPTIMIZERS[name](params, lr, lr_dropout, kernel)


def resolve_kernel(requested: str, device: torch.device, optimizer: str, long_session: bool) -> str:
    """The AdaBelief/RMSprop kernel for "auto"/"compiled"/"eager".

    auto = compiled on a CPU with a C++ compiler when the session may be long enough to repay the
    one-off compile (5-40 s against ~60 ms saved a step at quick96's size), eager otherwise. lr-dropout
    does not matter: its masks are drawn eagerly from torch's RNG and passed to either kernel.
    On a GPU the eager step (a few hundred small kernels) is cheap beside the model, so auto keeps it.
    """
    from facedouble.errors import FacedoubleError

    if requested not in OPTIMIZER_KERNELS:
        raise FacedoubleError(f"unknown optimizer kernel {requested!r} (use {', '.join(OPTIMIZER_KERNELS)})")
    if requested != "auto":
        return requested
    fits = optimizer in DFL_OPTIMIZERS and device.type == "cpu"
    return "compiled" if fits and long_session and compiler_available() else "eager"
