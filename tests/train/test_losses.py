"""Losses: SSIM/DSSIM correctness, DFL's soft training mask, masking and priorities."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facedouble.train.losses import dssim, gaussian_blur, identity_loss, ssim, training_mask


def _ref_ssim(a: np.ndarray, b: np.ndarray, k: int, sigma: float = 1.5) -> float:
    """Independent single-channel Gaussian SSIM ('valid' window) with scipy, for comparison."""
    from scipy.signal import correlate2d

    x = np.arange(k) - (k - 1) / 2
    g = np.exp(-x * x / (2 * sigma * sigma))
    w = np.outer(g, g) / np.outer(g, g).sum()

    def f(z: np.ndarray) -> np.ndarray:
        return correlate2d(z, w, mode="valid")

    mu_a, mu_b = f(a), f(b)
    va, vb, cov = f(a * a) - mu_a ** 2, f(b * b) - mu_b ** 2, f(a * b) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (va + vb + c2))
    return float(s.mean())


def test_ssim_matches_independent_reference(face_dirs) -> None:
    from facedouble.faceset import Faceset

    fs = Faceset(face_dirs[0])
    a = fs.load(fs.paths()[0])[0][..., 1].astype(np.float64) / 255
    b = np.clip(a + np.random.default_rng(0).normal(0, 0.05, a.shape), 0, 1)
    ours = ssim(torch.tensor(a, dtype=torch.float32)[None, None], torch.tensor(b, dtype=torch.float32)[None, None],
                5)
    assert float(ours[0]) == pytest.approx(_ref_ssim(a, b, 5), abs=1e-4)


def test_dssim_zero_for_identical_and_grows_with_noise() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 64, 64, generator=g)
    assert float(dssim(a, a, 64).max()) < 1e-5
    small = dssim(a, (a + 0.05 * torch.randn(a.shape, generator=g)).clamp(0, 1), 64)
    big = dssim(a, (a + 0.3 * torch.randn(a.shape, generator=g)).clamp(0, 1), 64)
    assert torch.all(big > small) and torch.all(small > 0)


def test_gaussian_blur_preserves_mass_inside() -> None:
    x = torch.zeros(1, 1, 33, 33)
    x[0, 0, 16, 16] = 1
    y = gaussian_blur(x, 2.0)
    assert float(y.sum()) == pytest.approx(1.0, abs=1e-5)
    assert float(y[0, 0, 16, 16]) == float(y.max())


def test_training_mask_full_inside_soft_rim() -> None:
    m = torch.zeros(1, 1, 64, 64)
    m[..., 16:48, 16:48] = 1
    t = training_mask(m, 64)
    assert float(t[0, 0, 32, 32]) == 1.0  # deep inside: full weight (clip 0.5 * 2)
    assert 0 < float(t[0, 0, 32, 15]) < 1  # just outside: soft rim from the blur
    assert float(t[0, 0, 32, 2]) < 1e-3  # far outside: nothing


def test_masked_loss_ignores_background() -> None:
    g = torch.Generator().manual_seed(1)
    target = torch.rand(2, 3, 64, 64, generator=g)
    mask = torch.zeros(2, 1, 64, 64)
    mask[..., 20:44, 20:44] = 1
    pred = target.clone()
    other = pred.clone()
    other[..., :4, :] = torch.rand(2, 3, 4, 64, generator=g)  # change only far background
    a = identity_loss(pred, mask, target, mask, 64)
    b = identity_loss(other, mask, target, mask, 64)
    assert torch.allclose(a, b, atol=1e-6)
    inside = pred.clone()
    inside[..., 30:34, 30:34] = 0
    assert torch.all(identity_loss(inside, mask, target, mask, 64) > a + 1e-3)
    # unmasked training does see the background
    assert torch.all(identity_loss(other, mask, target, mask, 64, masked=False) > a)


def test_eyes_mouth_priority_weights_that_region() -> None:
    target = torch.full((1, 3, 64, 64), 0.5)
    mask = torch.ones(1, 1, 64, 64)
    em = torch.zeros(1, 1, 64, 64)
    em[..., 40:48, 24:40] = 1
    pred = target.clone()
    pred[..., 40:48, 24:40] += 0.1
    base = identity_loss(pred, mask, target, mask, 64)
    prio = identity_loss(pred, mask, target, mask, 64, eyes_mouth=em)
    # 300 · mean|Δ| over the eyes/mouth region: 300 · 0.1 · (8·16·3)/(64·64·3)
    assert float(prio - base) == pytest.approx(300 * 0.1 * 8 * 16 / 64 / 64, rel=1e-3)


def test_mask_loss_counts() -> None:
    target = torch.rand(1, 3, 32, 32)
    mask = torch.ones(1, 1, 32, 32)
    good = identity_loss(target, mask, target, mask, 32)
    bad = identity_loss(target, torch.zeros_like(mask), target, mask, 32)
    assert float(bad - good) == pytest.approx(10.0, rel=1e-4)  # 10 · MSE(1 vs 0)
