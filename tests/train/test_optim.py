"""AdaBelief as DeepFaceLab computes it (no bias correction), and lr-dropout semantics."""

from __future__ import annotations

import pytest
import torch

from facedouble.errors import FacedoubleError
from facedouble.train.optim import AdaBelief, make_optimizer


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
