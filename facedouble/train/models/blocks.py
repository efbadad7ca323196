"""Building blocks of DeepFaceLab's DF/LIAE architectures ("DeepFakeArchi"), in PyTorch.

Structure and channel widths follow DFL so parameter counts, FLOPs and quality compare fairly.
Tensors are NCHW; the flatten before the dense bottleneck uses NHWC order like DFL, which only
matters for porting weights, not for training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 (the universal PyTorch idiom)
from torch import nn


def resolution_step(opts: str) -> int:
    """What a model's resolution must be a multiple of: 32 with `-d` or `-t` (one more halving), else 16."""
    return 32 if ("d" in opts or "t" in opts) else 16


def code_sizes(resolution: int, opts: str) -> tuple[int, int]:
    """(side of the bottleneck's code, side of the encoder's output) of a DF/LIAE model.

    The bottleneck's code is 1/16 of the resolution, 1/32 with `-d` (its decoder doubles once more); the
    encoder's output is 1/16, 1/32 with `-t` (one more downscale).
    """
    return resolution // (32 if "d" in opts else 16), resolution // (32 if "t" in opts else 16)


def glorot_init(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases, DFL's initialisation for every conv and dense."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def pixel_norm(x: torch.Tensor, dim: int = -1, eps: float = 1e-6) -> torch.Tensor:
    """Normalise to unit RMS along `dim` (DFL's `-u` option on the encoder output)."""
    return x * torch.rsqrt(torch.mean(x * x, dim=dim, keepdim=True) + eps)


def conv(in_ch: int, out_ch: int, k: int, stride: int = 1) -> nn.Conv2d:
    """'SAME'-padded conv (odd kernels, so symmetric padding equals TF's SAME at stride 1)."""
    return nn.Conv2d(in_ch, out_ch, k, stride=stride, padding=k // 2)


class Downscale(nn.Module):
    """Stride-2 5x5 conv + leaky ReLU 0.1."""

    def __init__(self, in_ch: int, out_ch: int, k: int = 5):
        super().__init__()
        self.conv = conv(in_ch, out_ch, k, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # in place: the conv output is not needed by any backward (leaky ReLU's own uses its output)
        return F.leaky_relu(self.conv(x), 0.1, inplace=True)


class Upscale(nn.Module):
    """3x3 conv to 4x channels + leaky ReLU 0.1 + pixel shuffle (depth-to-space) by 2."""

    def __init__(self, in_ch: int, out_ch: int, k: int = 3):
        super().__init__()
        self.conv = conv(in_ch, out_ch * 4, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(F.leaky_relu(self.conv(x), 0.1, inplace=True), 2)


class ResidualBlock(nn.Module):
    """Two 3x3 convs with leaky ReLU 0.2, the second applied after the skip add (as DFL does)."""

    def __init__(self, ch: int, k: int = 3):
        super().__init__()
        self.conv1 = conv(ch, ch, k)
        self.conv2 = conv(ch, ch, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.leaky_relu(self.conv1(x), 0.2, inplace=True))
        return F.leaky_relu(x + y, 0.2, inplace=True)


class Encoder(nn.Module):
    """Stride-2 5x5 convs with e_ch x 1,2,4,8 channels; `-t` adds residual blocks and a 5th downscale."""

    def __init__(self, in_ch: int, e_ch: int, opts: str):
        super().__init__()
        self.opts = opts
        if "t" in opts:
            self.layers = nn.Sequential(
                Downscale(in_ch, e_ch), ResidualBlock(e_ch), Downscale(e_ch, e_ch * 2),
                Downscale(e_ch * 2, e_ch * 4), Downscale(e_ch * 4, e_ch * 8), Downscale(e_ch * 8, e_ch * 8),
                ResidualBlock(e_ch * 8))
        else:
            chans = [in_ch] + [e_ch * min(2 ** i, 8) for i in range(4)]
            self.layers = nn.Sequential(*[Downscale(a, b) for a, b in zip(chans, chans[1:], strict=False)])
        self.out_ch = e_ch * 8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(x)
        x = x.permute(0, 2, 3, 1).flatten(1)  # NHWC flatten, as DFL
        return pixel_norm(x) if "u" in self.opts else x


class Inter(nn.Module):
    """Dense bottleneck: in -> ae_ch -> (low_res² x ae_out_ch), reshaped to a grid, then one upscale."""

    def __init__(self, in_features: int, ae_ch: int, ae_out_ch: int, low_res: int, opts: str):
        super().__init__()
        self.low_res, self.ae_out_ch = low_res, ae_out_ch
        self.dense1 = nn.Linear(in_features, ae_ch)
        self.dense2 = nn.Linear(ae_ch, low_res * low_res * ae_out_ch)
        self.upscale = Upscale(ae_out_ch, ae_out_ch) if "t" not in opts else nn.Identity()
        self.out_ch = ae_out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dense2(self.dense1(x))
        x = x.view(-1, self.low_res, self.low_res, self.ae_out_ch).permute(0, 3, 1, 2)
        return self.upscale(x)


class Decoder(nn.Module):
    """Upscales with residual blocks (d_ch x 8,4,2[,1]) to RGB, a thinner branch to the mask.

    `-d` doubles the output resolution: four sibling RGB heads interleaved by depth-to-space
    (DFL's x0..x3 tiling) and one more mask upscale.
    """

    def __init__(self, in_ch: int, d_ch: int, d_mask_ch: int, opts: str):
        super().__init__()
        self.double = "d" in opts
        widths = [d_ch * 8, d_ch * 4, d_ch * 2] + ([d_ch] if "t" in opts else [])
        mwidths = [d_mask_ch * 8, d_mask_ch * 4, d_mask_ch * 2] + ([d_mask_ch] if "t" in opts else [])
        ups, mups, last, mlast = [], [], in_ch, in_ch
        for w, mw in zip(widths, mwidths, strict=True):
            ups += [Upscale(last, w), ResidualBlock(w)]
            mups.append(Upscale(mlast, mw))
            last, mlast = w, mw
        if self.double:
            mups.append(Upscale(mlast, d_mask_ch))
            mlast = d_mask_ch
            # DFL: out_conv is 1x1, out_conv1..3 are 3x3; the four are interleaved 2x2.
            self.rgb_heads = nn.ModuleList([conv(last, 3, 1)] + [conv(last, 3, 3) for _ in range(3)])
        else:
            self.rgb_heads = nn.ModuleList([conv(last, 3, 1)])
        self.body = nn.Sequential(*ups)
        self.mask_body = nn.Sequential(*mups)
        self.mask_head = conv(mlast, 1, 1)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.body(z)
        if self.double:
            # depth-to-space over [x0..x3] places x0 top-left, x1 top-right, x2/x3 bottom, per pixel.
            heads = [h(x) for h in self.rgb_heads]
            rgb = F.pixel_shuffle(torch.stack(heads, dim=2).flatten(1, 2), 2)
        else:
            rgb = self.rgb_heads[0](x)
        mask = self.mask_head(self.mask_body(z))
        return torch.sigmoid(rgb), torch.sigmoid(mask)
