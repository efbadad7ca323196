"""AdaBelief and RMSprop as DeepFaceLab computes them (no bias correction), lr-dropout semantics, recipes."""

from __future__ import annotations

import pytest
import torch

from facedouble.errors import FacedoubleError
from facedouble.train.optim import AdaBelief, RMSprop, compiler_available, make_optimizer, resolve_kernel


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


def _run(kernel: str, steps: int = 3, cls: type = AdaBelief, lr_dropout: float = 1.0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    torch.manual_seed(3)  # the lr-dropout masks' RNG: the same masks for both kernels
    params = _param_set(gen)
    grads = [[torch.randn(p.shape, generator=gen) for p in params] for _ in range(steps)]
    opt = cls(params, lr=1e-2, lr_dropout=lr_dropout, kernel=kernel)
    for step_grads in grads:
        for p, g in zip(params, step_grads, strict=True):
            p.grad = g.contiguous(memory_format=torch.channels_last) if p.dim() == 4 else g
        opt.step()
    assert opt.kernel == kernel
    return [p.detach().clone() for p in params]


@pytest.mark.skipif(not compiler_available(), reason="torch.compile needs a C++ compiler")
@pytest.mark.parametrize(("cls", "lr_dropout"), [(AdaBelief, 1.0), (AdaBelief, 0.3), (RMSprop, 0.3)])
def test_compiled_step_matches_eager(cls, lr_dropout) -> None:
    # the fused kernel must compute the same update (to float rounding) on every layout it meets, and apply
    # the same lr-dropout masks (drawn eagerly from torch's RNG and passed in)
    compiled, eager = _run("compiled", cls=cls, lr_dropout=lr_dropout), _run("eager", cls=cls, lr_dropout=lr_dropout)
    for c, e in zip(compiled, eager, strict=True):
        torch.testing.assert_close(c, e, rtol=1e-6, atol=1e-7)


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
    assert resolve_kernel("auto", cpu, "adabelief", long_session=True) == "compiled"
    assert resolve_kernel("auto", cpu, "adabelief", long_session=False) == "eager"
    # the choice does not depend on lr-dropout: its masks are drawn eagerly and passed to the fused kernel
    assert resolve_kernel("auto", cpu, "adabelief", long_session=True) == "compiled"
    assert resolve_kernel("auto", cpu, "rmsprop", long_session=True) == "compiled"
    assert resolve_kernel("auto", cpu, "rmsprop", long_session=False) == "eager"
    assert resolve_kernel("auto", cpu, "adam", long_session=True) == "eager"
    assert resolve_kernel("auto", cuda, "adabelief", long_session=True) == "eager"
    assert resolve_kernel("compiled", cpu, "adabelief", long_session=False) == "compiled"
    monkeypatch.setattr(optim, "compiler_available", lambda: False)
    assert resolve_kernel("auto", cpu, "adabelief", long_session=True) == "eager"
    with pytest.raises(FacedoubleError, match="unknown optimizer kernel"):
        resolve_kernel("fast", cpu, "adabelief", long_session=True)


# -- RMSprop (DFL's Quick96 optimizer) ------------------------------------------------------------------------

def _rmsprop_reference(p: torch.Tensor, grads: list[torch.Tensor], lr: float, rho=0.9, eps=1e-7) -> torch.Tensor:
    """DFL's RMSprop.get_update_op, written out element-wise: the new accumulator, epsilon outside the root."""
    a, p = torch.zeros_like(p), p.clone()
    for g in grads:
        a = rho * a + (1 - rho) * g * g
        p = p - lr * g / (torch.sqrt(a) + eps)
    return p


def test_rmsprop_matches_dfl_formula() -> None:
    gen = torch.Generator().manual_seed(4)
    start = torch.randn(6, 5, generator=gen)
    grads = [torch.randn(6, 5, generator=gen) * 1e-2 for _ in range(4)]
    p = torch.nn.Parameter(start.clone())
    opt = make_optimizer("rmsprop", [p], 2e-4, 1.0)
    assert isinstance(opt, RMSprop) and opt.defaults["rho"] == 0.9 and opt.defaults["eps"] == 1e-7
    for g in grads:
        p.grad = g.clone()
        opt.step()
    torch.testing.assert_close(p.detach(), _rmsprop_reference(start, grads, 2e-4), rtol=1e-5, atol=1e-7)


def test_rmsprop_lr_dropout_keeps_that_fraction_afresh_each_step() -> None:
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.zeros(200_000))
    opt = RMSprop([p], lr=1e-3, lr_dropout=0.3)
    p.grad = torch.ones_like(p)
    opt.step()
    first = p.detach() != 0
    assert float(first.float().mean()) == pytest.approx(0.3, abs=0.01)
    acc = opt.state[p]["acc"]
    torch.testing.assert_close(acc, torch.full_like(acc, 0.1))  # the accumulator sees every element
    before = p.detach().clone()
    opt.step()
    second = p.detach() != before
    assert float(second.float().mean()) == pytest.approx(0.3, abs=0.01)
    both = float((first & second).float().mean())
    assert both == pytest.approx(0.09, abs=0.01)  # independent masks each step, as DFL draws them


def test_rmsprop_state_round_trips_and_resumes_like_one_run() -> None:
    """Save after 2 steps, load into a fresh optimizer, 2 more == 4 straight (the RNG restored, as checkpoints do)."""
    from facedouble.nn import checkpoint as ck

    gen = torch.Generator().manual_seed(5)
    start = torch.randn(40, 30, generator=gen)
    grads = [torch.randn(40, 30, generator=gen) for _ in range(4)]

    def opt_for(p):
        return RMSprop([p], lr=1e-2, lr_dropout=0.3)

    torch.manual_seed(7)
    straight = torch.nn.Parameter(start.clone())
    opt = opt_for(straight)
    for g in grads:
        straight.grad = g.clone()
        opt.step()

    torch.manual_seed(7)
    p = torch.nn.Parameter(start.clone())
    opt = opt_for(p)
    for g in grads[:2]:
        p.grad = g.clone()
        opt.step()
    saved, _ = ck.training_from_safetensors(ck.training_to_safetensors({"model": opt.state_dict()}, {}))
    rng = torch.get_rng_state()
    q = torch.nn.Parameter(p.detach().clone())
    resumed = opt_for(q)
    resumed.load_state_dict(saved["model"])
    torch.set_rng_state(rng)
    for g in grads[2:]:
        q.grad = g.clone()
        resumed.step()
    assert torch.equal(q.detach(), straight.detach())


def test_rmsprop_training_resumes_exactly(face_dirs, tmp_path) -> None:
    """2 + 2 iterations with a save/load in between == 4 straight (weights bit-equal), with Quick96's recipe."""
    from facedouble.nn import checkpoint as ck
    from tests.train.conftest import train_tiny

    opts = dict(optimizer="rmsprop", lr=2e-4, lr_dropout=0.3)
    train_tiny(tmp_path / "straight", *face_dirs, iters=4, **opts)
    train_tiny(tmp_path / "resumed", *face_dirs, iters=2, **opts)
    second = train_tiny(tmp_path / "resumed", *face_dirs, iters=4, **opts)
    assert second["iteration"] == 4 and second["iterations"] == 2
    a, b = ck.load_checkpoint(tmp_path / "straight"), ck.load_checkpoint(tmp_path / "resumed")
    assert b.state["train"]["optimizer"] == "rmsprop" and b.state["train"]["lr_dropout"] == 0.3
    assert a.state["loss_history"] == b.state["loss_history"]
    for k in a.weights:
        assert torch.equal(a.weights[k], b.weights[k]), k
    acc = b.optimizers["model"]["state"]
    assert acc and all(set(s) == {"acc"} for s in acc.values())


def test_presets_start_from_dfl_recipes(tmp_path) -> None:
    from facedouble.train.resume import resolve_configs

    _, quick, _ = resolve_configs(tmp_path / "a", "quick96", None, None)
    assert (quick.optimizer, quick.lr, quick.lr_dropout) == ("rmsprop", 2e-4, 0.3)
    _, default, _ = resolve_configs(tmp_path / "b", None, None, None)  # no --preset: quick96
    assert default.optimizer == "rmsprop"
    for name in ("saehd-df-128", "saehd-liae-ud-128"):
        _, saehd, _ = resolve_configs(tmp_path / "c", name, None, None)
        assert (saehd.optimizer, saehd.lr, saehd.lr_dropout) == ("adabelief", 5e-5, 1.0)
    # explicit settings override the recipe, one by one
    _, given, _ = resolve_configs(tmp_path / "d", "quick96", None, {"optimizer": "adabelief", "lr": None})
    assert (given.optimizer, given.lr, given.lr_dropout) == ("adabelief", 2e-4, 0.3)
    _, given, _ = resolve_configs(tmp_path / "e", "quick96", None, {"lr_dropout": 1.0, "lr": 1e-4})
    assert (given.optimizer, given.lr, given.lr_dropout) == ("rmsprop", 1e-4, 1.0)


def test_adam_refuses_lr_dropout_and_rmsprop_is_a_choice() -> None:
    from facedouble.train.config import TrainConfig

    assert TrainConfig(optimizer="rmsprop").optimizer == "rmsprop"
    with pytest.raises(FacedoubleError, match="adabelief or rmsprop"):
        make_optimizer("adam", [torch.nn.Parameter(torch.zeros(1))], 1e-4, lr_dropout=0.3)
