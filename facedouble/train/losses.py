"""DeepFaceLab's SAEHD reconstruction losses.

Per identity: 10·DSSIM (Gaussian window int(res/11.6), σ 1.5; at ≥ 256 px half weight on a second
window of half the size) + 10·MSE on the face masked by the blurred training mask, 10·MSE on the
mask itself, and optionally 300·L1 on the eyes+mouth region.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F  # noqa: N812 (the universal PyTorch idiom)


@functools.lru_cache(maxsize=16)
def _gaussian_1d(size: int, sigma: float) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(x * x) / (2 * sigma * sigma))
    return g / g.sum()


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of an NCHW tensor, zero padding outside (like DFL's mask blur)."""
    size = max(3, int(2 * round(3 * sigma) + 1))
    g = _gaussian_1d(size, float(sigma)).to(x.device, x.dtype)
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, size), padding=(0, size // 2), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, size, 1), padding=(size // 2, 0), groups=c)


def ssim(a: torch.Tensor, b: torch.Tensor, kernel: int, sigma: float = 1.5) -> torch.Tensor:
    """Per-sample mean SSIM of two NCHW images in [0,1] (valid-window Gaussian SSIM, as tf.image.ssim)."""
    kernel = max(3, kernel)
    g = _gaussian_1d(kernel, sigma).to(a.device, a.dtype)
    c = a.shape[1]
    w = (g[:, None] * g[None, :]).expand(c, 1, kernel, kernel)

    def filt(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, w, groups=c)

    # One batched conv for the five moments instead of five convs.
    stats = filt(torch.cat([a, b, a * a, b * b, a * b], 1).reshape(-1, c, *a.shape[2:]))
    mu_a, mu_b, aa, bb, ab = stats.reshape(a.shape[0], 5, c, *stats.shape[2:]).unbind(1)
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    var_a, var_b, cov = aa - mu_a ** 2, bb - mu_b ** 2, ab - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return s.mean(dim=(1, 2, 3))


def dssim(a: torch.Tensor, b: torch.Tensor, resolution: int) -> torch.Tensor:
    """DFL's structural dissimilarity (1 - SSIM) / 2, per sample; two scales at ≥ 256 px."""
    k = int(resolution / 11.6)
    if resolution < 256:
        return (1 - ssim(a, b, k)) / 2
    return (1 - ssim(a, b, k)) / 4 + (1 - ssim(a, b, int(resolution / 23.2))) / 4


def training_mask(mask: torch.Tensor, resolution: int) -> torch.Tensor:
    """DFL's soft training mask: clip(blur(mask, σ=res/32), 0, 0.5)·2 — full weight inside, a soft rim."""
    return torch.clamp(gaussian_blur(mask, resolution / 32), 0.0, 0.5) * 2


def identity_loss(pred_rgb: torch.Tensor, pred_mask: torch.Tensor, target: torch.Tensor,
                  target_mask: torch.Tensor, resolution: int, eyes_mouth: torch.Tensor | None = None,
                  eyes_mouth_weight: float = 300.0, masked: bool = True) -> torch.Tensor:
    """SAEHD loss for one identity, per sample (N,). All inputs NCHW float in [0,1]."""
    pred_rgb, pred_mask = pred_rgb.float(), pred_mask.float()  # loss math in fp32 even under bf16
    m = training_mask(target_mask, resolution) if masked else torch.ones_like(target_mask)
    t, p = target * m, pred_rgb * m
    loss = 10 * dssim(t, p, resolution) + 10 * torch.mean((t - p) ** 2, dim=(1, 2, 3))
    if eyes_mouth is not None and eyes_mouth_weight > 0:
        loss = loss + eyes_mouth_weight * torch.mean(torch.abs(target * eyes_mouth - pred_rgb * eyes_mouth),
                                                     dim=(1, 2, 3))
    return loss + 10 * torch.mean((target_mask - pred_mask) ** 2, dim=(1, 2, 3))
