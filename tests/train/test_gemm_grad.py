"""3x3 convs with im2col-GEMM weight gradients: the same gradients as PyTorch's, on real-face features."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from facedouble.errors import FacedoubleError
from facedouble.train.models import gemm_grad
from facedouble.train.models.presets import build_model, preset


def _features(faces: torch.Tensor, channels: int, size: tuple[int, int], seed: int) -> torch.Tensor:
    """Features of real faces as a decoder layer sees them: a random conv lifts RGB to `channels`."""
    gen = torch.Generator().manual_seed(seed)
    x = F.interpolate(faces, size=size, mode="bilinear", align_corners=False)
    return F.leaky_relu(F.conv2d(x, torch.randn(channels, 3, 3, 3, generator=gen), padding=1), 0.1)


@pytest.mark.parametrize("size", [(64, 64), (13, 9), (1, 1)])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("chunk_bytes", [1, 1 << 30])  # one image per GEMM / the whole batch in one
def test_weight_grad_matches_pytorch(face_batch, size, channels_last: bool, chunk_bytes: int) -> None:
    x = _features(face_batch, 24, size, seed=0)
    grad_out = _features(face_batch, 40, size, seed=1)  # an output gradient shaped like real signals
    if channels_last:
        x, grad_out = (t.contiguous(memory_format=torch.channels_last) for t in (x, grad_out))
    weight = torch.randn(40, 24, 3, 3, requires_grad=True)
    (want,) = torch.autograd.grad(F.conv2d(x, weight, padding=1), weight, grad_out)
    got = gemm_grad.weight_grad(x, grad_out, chunk_bytes)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * want.abs().max().item())


def test_module_gives_the_same_output_and_gradients_as_conv2d(face_batch) -> None:
    x = _features(face_batch, 32, (24, 24), seed=2).contiguous(memory_format=torch.channels_last)
    plain = nn.Conv2d(32, 64, 3, padding=1).to(memory_format=torch.channels_last)
    fast = nn.Conv2d(32, 64, 3, padding=1).to(memory_format=torch.channels_last)
    fast.load_state_dict(plain.state_dict())
    assert gemm_grad.convert(fast) == 1 and isinstance(fast, gemm_grad.GemmGradConv2d)
    assert fast.state_dict().keys() == plain.state_dict().keys()
    results = []
    for conv in (plain, fast):
        xi = x.clone().requires_grad_()
        out = conv(xi)
        out.backward(out.detach() * 0.5 - 0.1)  # grad of a quadratic loss on real-face features
        results.append((out.detach(), xi.grad, conv.weight.grad, conv.bias.grad))
    assert fast.weight.grad.stride() == fast.weight.stride()  # grads land in the weights' layout, no copy
    for want, got in zip(*results, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * want.abs().max().item())


def test_autocast_and_inference_use_the_plain_kernel(face_batch) -> None:
    conv = nn.Conv2d(16, 64, 3, padding=1)
    gemm_grad.convert(conv)
    x = _features(face_batch, 16, (12, 12), seed=3).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = conv(x)
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()  # the custom backward would refuse mixed dtypes
    assert conv.weight.grad is not None
    with torch.no_grad():
        assert conv(x).grad_fn is None


def test_only_3x3_convs_with_enough_outputs_convert() -> None:
    model = nn.Sequential(nn.Conv2d(256, 512, 3, padding=1),  # converted
                          nn.Conv2d(512, 3, 3, padding=1),  # RGB head: oneDNN's kernel is faster there
                          nn.Conv2d(512, 512, 3, padding=1, stride=2),  # strided: not eligible
                          nn.Conv2d(512, 512, 5, padding=2),  # 5x5: not eligible
                          nn.Conv2d(512, 512, 1))
    assert gemm_grad.convert(model) == 1
    assert type(model[0]) is gemm_grad.GemmGradConv2d
    assert [type(m) for m in model[1:]] == [nn.Conv2d] * 4
    assert gemm_grad.convert(build_model(preset("quick96"))) == 27


def test_model_gradients_match_the_native_backward(face_batch) -> None:
    """The tiny model's every parameter gradient on a real-face reconstruction loss, both ways."""
    faces = F.interpolate(face_batch, size=(64, 64), mode="bilinear", align_corners=False)
    grads = []
    for convert in (False, True):
        torch.manual_seed(0)
        model = build_model(preset("tiny")).to(memory_format=torch.channels_last)
        assert (gemm_grad.convert(model) if convert else 0) == (21 if convert else 0)
        out = model(faces, faces)
        loss = sum(((out[f"{side}_rgb"] - faces) ** 2).mean() + ((out[f"{side}_mask"] - faces[:, :1]) ** 2).mean()
                   for side in ("src", "dst"))
        loss.backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    assert all(g is not None for g in grads[0].values())
    for name, want in grads[0].items():
        torch.testing.assert_close(grads[1][name], want, rtol=1e-4, atol=1e-5 * want.abs().max().item() + 1e-12,
                                   msg=name)


def test_trainer_uses_gemm_weight_grads_in_fp32_on_cpu(face_dirs, tmp_path: Path) -> None:
    from facedouble.train.trainer import Trainer

    fast = {"batch_size": 2, "workers": 0, "max_iters": 1, "bf16": False}
    for mode, count in (("auto", 21), ("native", 0), ("gemm", 21)):
        overrides = {**fast, "conv_weight_grad": mode}
        trainer = Trainer.create(tmp_path / mode, *face_dirs, "tiny", train_overrides=overrides)
        try:
            assert trainer.gemm_grad_convs == count, mode
        finally:
            trainer.close()
    with pytest.raises(FacedoubleError, match="conv_weight_grad"):
        Trainer.create(tmp_path / "bad", *face_dirs, "tiny", train_overrides={**fast, "conv_weight_grad": "fast"})
