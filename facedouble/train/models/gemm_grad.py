"""3x3 convolutions whose weight gradient is one im2col GEMM, for fp32 training on a CPU.

On a 2-core AVX2 CPU oneDNN's backward-weights kernel runs the decoder's wide 3x3 convs at ~55-70
GFLOP/s, against ~150 for their forward and backward-data passes, so the weight gradient is most
of the backward pass. The same gradient written as one BLAS GEMM over the im2col'd input,
dW = dY^T [O, N*H*W] @ cols [N*H*W, 9*C], taken a cache-sized block of images at a time, runs at
~90-145 GFLOP/s: 1.05-2.7x faster on every 3x3 conv with >= 64 outputs of quick96 and
saehd-liae-ud-128 (their layer shapes at batch 4 and 8, 2 AVX2 cores, 2026-12-01). Work per im2col
byte grows with the output count, so the 3-channel RGB heads lose (0.4x) and keep oneDNN's kernel
(`MIN_OUT_CHANNELS`). A whole quick96 step at batch 4 is 1.12x faster (README, Train).

Forward and input gradient stay oneDNN's; weights and checkpoints are unchanged (the module keeps
nn.Conv2d's parameters). Used by the trainer in fp32 on CPU only: under bf16 autocast, on GPUs and
without grad the module is a plain nn.Conv2d.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 (the universal PyTorch idiom)
from torch import nn

from facedouble.train.models.winograd import eligible

WEIGHT_GRAD_MODES = ("auto", "gemm", "native")
MIN_OUT_CHANNELS = 64  # measured: >= 64 outputs gain 1.05-2.7x, 3-output heads lose
CHUNK_BYTES = 8 << 20  # im2col block per GEMM: cache-sized


def weight_grad(x: torch.Tensor, grad_out: torch.Tensor, chunk_bytes: int = CHUNK_BYTES) -> torch.Tensor:
    """dL/dW of a 3x3, stride-1, padding-1 conv from its input and output gradient.

    Images are taken in groups whose im2col block stays near `chunk_bytes`, so the block is still in
    cache when the GEMM reads it. Returns (O, C, 3, 3) in channels-last strides (a channels-last
    model's weight layout).
    """
    n, c, h, w = x.shape
    o = grad_out.shape[1]
    padded = F.pad(x.permute(0, 2, 3, 1), (0, 0, 1, 1, 1, 1))  # N, H+2, W+2, C
    dy = grad_out.permute(0, 2, 3, 1).reshape(n, h * w, o)
    grad = torch.zeros(o, 9 * c, dtype=x.dtype, device=x.device)
    step = max(1, chunk_bytes // (h * w * 9 * c * x.element_size()))
    for i in range(0, n, step):
        block = padded[i:i + step]
        cols = torch.cat([block[:, ky:ky + h, kx:kx + w] for ky in range(3) for kx in range(3)], dim=3)
        grad.addmm_(dy[i:i + step].reshape(-1, o).t(), cols.reshape(-1, 9 * c))
    return grad.view(o, 3, 3, c).permute(0, 3, 1, 2)


class _Conv3x3(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return F.conv2d(x, weight, bias, padding=1)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(
                grad_out, x, weight, None, (1, 1), (1, 1), (1, 1), False, (0, 0), 1, (True, False, False))[0]
        if ctx.needs_input_grad[1]:
            grad_w = weight_grad(x, grad_out)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_out.sum((0, 2, 3))
        return grad_x, grad_w, grad_b


class GemmGradConv2d(nn.Conv2d):
    """An nn.Conv2d (3x3, stride 1, padding 1) whose fp32 CPU weight gradient is one GEMM."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (torch.is_grad_enabled() and x.dtype == torch.float32 and x.device.type == "cpu"
                and not torch.is_autocast_enabled("cpu")):
            return _Conv3x3.apply(x, self.weight, self.bias)
        return super().forward(x)


def use_gemm(requested: str, device: torch.device, bf16: bool) -> bool:
    """Resolve a `conv_weight_grad` request (see `WEIGHT_GRAD_MODES`): auto = gemm on a CPU in fp32."""
    from facedouble.errors import FacedoubleError

    if requested not in WEIGHT_GRAD_MODES:
        raise FacedoubleError(f"unknown conv_weight_grad {requested!r} (use {', '.join(WEIGHT_GRAD_MODES)})")
    if requested == "auto":
        return device.type == "cpu" and not bf16
    return requested == "gemm"


def convert(model: nn.Module, min_out_channels: int = MIN_OUT_CHANNELS) -> int:
    """Make every plain 3x3 conv of `model` with >= `min_out_channels` outputs a GemmGradConv2d, in place.

    Parameters, their names and state dicts are untouched (only the class changes). Returns how many.
    """
    count = 0
    for module in model.modules():
        if type(module) is nn.Conv2d and eligible(module) and module.out_channels >= min_out_channels:
            module.__class__ = GemmGradConv2d
            count += 1
    return count
