"""AdaBelief as DeepFaceLab computes it (no bias correction), and lr-dropout semantics."""

from __future__ import annotations

import pytest
import torch

from facedouble.errors import FacedoubleError
from facedouble.train.optim import AdaBelief, compiler_available, make_optimizer, resolve_kernel


def _reference(p: torch.Tensor, grads: list[torch.Tensor], lr: float, b1=0.9, b2=0.999, eps=1e-6) -> torch.Tensor:
    """DFL's AdaBelief.get_updates, written out element-wise."""
    m, v, p = torch.zeros_like(p), torch.zeros_like(p), p.clone()
    for g in grads:
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * (g - m) ** 2
        p = p - lr * m / (torch.sqrt(v) + eps)
    return p


def test_adabelief_matches_dfl_formula() -> None:
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(5, 7, generator=gen)
    grads = [torch.randn(5, 7, generator=gen) for _ in range(4)]
    p = torch.nn.Parameter(start.clone())
    opt = AdaBelief([p], lr=1e-2)
    for g in grads:
        p.grad = g.clone()
        opt.step()
    torch.testing.assert_close(p.detach(), _reference(start, grads, 1e-2), rtol=1e-5, atol=1e-6)


def test_lr_dropout_keeps_about_that_fraction_of_updates() -> None:
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.zeros(100_000))
    opt = AdaBelief([p], lr=1e-3, lr_dropout=0.3)
    p.grad = torch.ones_like(p)
    opt.step()
    moved = float((p.detach() != 0).float().mean())
    assert moved == pytest.approx(0.3, abs=0.01)
    # the moments still see every gradient element (only the applied update is dropped)
    assert torch.all(opt.state[p]["m"] != 0)


def test_optimizer_choice_errors() -> None:
    p = [torch.nn.Parameter(torch.zeros(1))]
    with pytest.raises(FacedoubleError, match="only available"):
        make_optimizer("adam", p, 1e-4, lr_dropout=0.3)
    with pytest.raises(FacedoubleError, match="unknown optimizer"):
        make_optimizer("sgd", p, 1e-4, 1.0)


def _param_set(gen: torch.Generator) -> list[torch.nn.Parameter]:
    """Shapes and layouts as in a model: a channels-last conv weight, a dense weight, a bias."""
    conv = torch.randn(16, 8, 3, 3, generator=gen).contiguous(memory_format=torch.channels_last)
    return [torch.nn.Parameter(t) for t in (conv, torch.randn(33, 17, generator=gen), torch.randn(16, generator=gen))]


def _run(kernel: str, steps: int = 3) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    params = _param_set(gen)
    grads = [[torch.randn(p.shape, generator=gen) for p in params] for _ in range(steps)]
    opt = AdaBelief(params, lr=1e-2, kernel=kernel)
    for step_grads in grads:
        for p, g in zip(params, step_grads, strict=True):
            p.grad = g.contiguous(memory_format=torch.channels_last) if p.dim() == 4 else g
        opt.step()
    assert opt.kernel == kernel
    return [p.detach().clone() for p in params]


@pytest.mark.skipif(not compiler_available(), reason="torch.compile needs a C++ compiler")
def test_compiled_step_matches_eager() -> None:
    # the fused kernel must compute the same update (to float rounding) on every layout it meets
    for compiled, eager in zip(_run("compiled"), _run("eager"), strict=True):
        torch.testing.assert_close(compiled, eager, rtol=1e-6, atol=1e-7)


def test_failed_compile_falls_back_to_eager(monkeypatch, caplog) -> None:
    from facedouble.train import optim

    def broken(*args, **kwargs):
        raise RuntimeError("InductorError: C++ compile failed\nlong compiler output")

    monkeypatch.setattr(optim, "_compiled", lambda: broken)
    gen = torch.Generator().manual_seed(2)
    start = torch.randn(5, 7, generator=gen)
    grads = [torch.randn(5, 7, generator=gen) for _ in range(2)]
    p = torch.nn.Parameter(start.clone())
    opt = AdaBelief([p], lr=1e-2, kernel="compiled")
    for g in grads:
        p.grad = g.clone()
        opt.step()
    assert opt.kernel == "eager"
    assert "C++ compile failed" in caplog.text and "long compiler output" not in caplog.text
    torch.testing.assert_close(p.detach(), _reference(start, grads, 1e-2), rtol=1e-5, atol=1e-6)


def test_auto_kernel_compiles_only_where_it_pays(monkeypatch) -> None:
    from facedouble.train import optim

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(optim, "compiler_available", lambda: True)
    assert resolve_kernel("auto", cpu, "adabelief", 1.0, long_session=True) == "compiled"
    assert resolve_kernel("auto", cpu, "adabelief", 1.0, long_session=False) == "eager"
    assert resolve_kernel("auto", cpu, "adabelief", 0.3, long_session=True) == "eager"  # dropout masks stay eager
    assert resolve_kernel("auto", cpu, "adam", 1.0, long_session=True) == "eager"
    assert resolve_kernel("auto", cuda, "adabelief", 1.0, long_session=True) == "eager"
    assert resolve_kernel("compiled", cpu, "adabelief", 1.0, long_session=False) == "compiled"
    monkeypatch.setattr(optim, "compiler_available", lambda: False)
    assert resolve_kernel("auto", cpu, "adabelief", 1.0, long_session=True) == "eager"
    with pytest.raises(FacedoubleError, match="unknown optimizer kernel"):
        resolve_kernel("fast", cpu, "adabelief", 1.0, long_session=True)
