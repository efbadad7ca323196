"""Optional adversarial parts: a patch discriminator (GAN power) and DF's "true face" code discriminator.

The patch discriminator is a plain PatchGAN (stride-2 4x4 convs, one logit per patch), smaller
than DFL's UNet patch discriminator; it plays the same role: sharpen src->src detail.
The code discriminator tells src codes from dst codes; the generator is pushed to make dst codes
look like src codes, which makes the swap resemble src more (DFL's `true_face_power`, DF only).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 (the universal PyTorch idiom)
from torch import nn

from facedouble.train.models.blocks import glorot_init


class PatchDiscriminator(nn.Module):
    """RGB image -> logits per patch (receptive field ≈ res/4 at 3 downscales)."""

    def __init__(self, ch: int = 16, downscales: int = 3):
        super().__init__()
        layers, last = [], 3
        for i in range(downscales):
            layers += [nn.Conv2d(last, ch * 2 ** i, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            last = ch * 2 ** i
        layers.append(nn.Conv2d(last, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)
        glorot_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CodeDiscriminator(nn.Module):
    """Bottleneck code grid (N, C, r, r) -> one logit per sample."""

    def __init__(self, in_ch: int, code_res: int, ch: int = 256):
        super().__init__()
        layers, last = [], in_ch
        for _ in range(1 + code_res // 8):
            layers += [nn.Conv2d(last, ch, 3, stride=2, padding=1), nn.LeakyReLU(0.1, inplace=True)]
            last = ch
        self.net = nn.Sequential(*layers)
        self.out = nn.Conv2d(last, 1, 1)
        glorot_init(self)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return self.out(self.net(code)).mean(dim=(1, 2, 3))


def bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Sigmoid cross-entropy against all-real or all-fake labels (DFL's DLoss)."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits.float(), target.float())
