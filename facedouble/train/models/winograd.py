"""Winograd F(4x4, 3x3) convolution for CPU inference: the decoder's wide 3x3 convs with 4x fewer multiplies.

A 3x3 stride-1 conv computes each 4x4 output tile from a 6x6 input tile. Winograd's minimal filtering
(Lavin & Gray 2015, interpolation points 0, +-1, +-2, inf) turns that into 36 independent channel
matmuls of the transformed tiles with the transformed weights: 36 multiplies per tile, channel pair,
instead of 16 x 9 = 144. Direct conv on a 2-core AVX2 CPU already runs near the fp32 ceiling, so
fewer multiplies is the only way to make a 128 px model faster there. The input and output
transforms are memory-bound, which is why only wide layers are converted (`worth_converting`).

Accuracy: the transforms are computed in float64 and the weights transformed once; the fp32 result
differs from direct convolution by ~1e-5 relative (tests/train/test_winograd.py).
Used by `facedouble.train.swapper.load_swapper` on CPU in fp32; never for training, bf16 or ONNX export.
"""

from __future__ import annotations

import torch
from torch import nn

_D = torch.float64
_BT = torch.tensor([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                    [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], dtype=_D)
_G = torch.tensor([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                   [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], dtype=_D)
_AT = torch.tensor([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], dtype=_D)
# 2-D transforms as one matrix each (Kronecker products), so each is a single GEMM over all tiles.
_INPUT_T = torch.kron(_BT, _BT).float()  # (36, 36): 6x6 input tile -> 36 Winograd points
_WEIGHT_T = torch.kron(_G, _G)  # (36, 9): 3x3 kernel -> 36 points (float64, applied once)
_OUTPUT_T = torch.kron(_AT, _AT).float()  # (16, 36): 36 points -> 4x4 output tile

TILE = 4  # output tile side
MIN_WIDTH = 96  # convert when C*O/(C+O) >= this; narrower layers lose more to the transforms than they gain


def transform_weight(weight: torch.Tensor) -> torch.Tensor:
    """(O, C, 3, 3) conv weight -> (36, C, O) Winograd-domain weight (float32)."""
    out_ch, in_ch = weight.shape[:2]
    flat = weight.detach().reshape(out_ch, in_ch * 9)
    out = torch.empty(36, in_ch, out_ch, dtype=torch.float32, device=weight.device)
    step = max(1, (1 << 22) // (in_ch * 9))  # float64 temporaries of ~100 MB at most, not 36x the layer
    for o in range(0, out_ch, step):
        chunk = flat[o:o + step].to(_D).reshape(-1, 9).T  # (9, chunk*C)
        points = (_WEIGHT_T.to(weight.device) @ chunk).reshape(36, -1, in_ch)  # (36, chunk, C)
        out[:, :, o:o + step] = points.transpose(1, 2).float()
    return out


def conv3x3(x: torch.Tensor, weight_t: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """3x3, stride 1, padding 1 convolution of NCHW `x` (any memory format) with a transformed weight.

    Returns an NCHW tensor in channels-last memory format, as oneDNN's direct conv does.
    """
    batch, in_ch, h, w = x.shape
    out_ch = weight_t.shape[2]
    th, tw = -(-h // TILE), -(-w // TILE)
    padded = x.new_zeros(batch, th * TILE + 2, tw * TILE + 2, in_ch)
    padded[:, 1:h + 1, 1:w + 1] = x.permute(0, 2, 3, 1)
    # Overlapping 6x6 tiles at stride 4, gathered point-major: (36, tiles*C)
    tiles = padded.unfold(1, 6, TILE).unfold(2, 6, TILE).permute(4, 5, 0, 1, 2, 3).reshape(36, -1)
    n_tiles = batch * th * tw
    points = (_INPUT_T.to(x.device) @ tiles).view(36, n_tiles, in_ch)
    products = torch.bmm(points, weight_t)  # (36, tiles, O): the 36 channel matmuls
    out = (_OUTPUT_T.to(x.device) @ products.view(36, -1)).view(TILE, TILE, batch, th, tw, out_ch)
    out = out.permute(2, 3, 0, 4, 1, 5).reshape(batch, th * TILE, tw * TILE, out_ch)
    if bias is not None:
        out += bias
    out = out[:, :h, :w].permute(0, 3, 1, 2)
    return out.contiguous(memory_format=torch.channels_last)  # a no-op unless tiles were cropped


class WinogradConv2d(nn.Module):
    """Inference-only replacement for a 3x3 stride-1 'same' nn.Conv2d (weights transformed once)."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        if not eligible(conv):
            raise ValueError(f"not a 3x3 stride-1 padding-1 conv: {conv}")
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.register_buffer("weight_t", transform_weight(conv.weight))
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv3x3(x, self.weight_t, self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, F(4x4, 3x3)"


def eligible(conv: nn.Module) -> bool:
    """True for a plain 3x3, stride-1, padding-1, ungrouped, undilated nn.Conv2d."""
    return (isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3) and conv.stride == (1, 1)
            and conv.padding == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1
            and conv.padding_mode == "zeros")


def worth_converting(conv: nn.Module, min_width: float = MIN_WIDTH) -> bool:
    """Eligible and wide enough (C*O/(C+O) >= min_width) that 4x fewer multiplies outweigh the
    memory-bound tile transforms."""
    return eligible(conv) and conv.in_channels * conv.out_channels / (conv.in_channels + conv.out_channels) >= min_width


def convert(model: nn.Module, min_width: float = MIN_WIDTH) -> int:
    """Replace every conv of `model` worth converting by a WinogradConv2d, in place; returns how many.

    `min_width=0` converts every eligible conv (for tests and measurements).
    """
    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if worth_converting(child, min_width):
                setattr(parent, name, WinogradConv2d(child))
                count += 1
    return count
