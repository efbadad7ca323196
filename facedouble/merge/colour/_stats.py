"""Masked statistics shared by the colour transfers."""

from __future__ import annotations

import numpy as np

# Below this many effective masked pixels the statistics are noise; transfers return the input.
MIN_WEIGHT = 16.0


def weights(mask: np.ndarray) -> np.ndarray:
    """Flattened non-negative float64 weights from a (H, W) mask in [0, 1]."""
    return np.clip(mask.astype(np.float64), 0.0, 1.0).reshape(-1)


def mean_cov(pixels: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean (C,) and covariance (C, C) of (N, C) pixels."""
    total = w.sum()
    mean = (pixels * w[:, None]).sum(0) / total
    centred = pixels - mean
    cov = (centred * w[:, None]).T @ centred / total
    return mean, cov


def sym_sqrt(matrix: np.ndarray, eps: float = 1e-6, inverse: bool = False) -> np.ndarray:
    """Symmetric (inverse) square root of a covariance, eigenvalues floored at `eps` for stability."""
    values, vectors = np.linalg.eigh(matrix)
    values = np.maximum(values, eps)
    root = np.sqrt(values)
    if inverse:
        root = 1.0 / root
    return (vectors * root) @ vectors.T


SAMPLE_THRESHOLD = 0.5


def inside(mask: np.ndarray, threshold: float = SAMPLE_THRESHOLD) -> np.ndarray:
    """Flattened boolean selection of the pixels the sample-based transfers (idt, sot) use."""
    return mask.reshape(-1) > threshold


def samples(pixels: np.ndarray, mask: np.ndarray, threshold: float = SAMPLE_THRESHOLD) -> np.ndarray:
    """Pixels (N, C) where the mask is above `threshold`."""
    return pixels[inside(mask, threshold)]


def enough(mask: np.ndarray) -> bool:
    """True when the mask holds enough weight for meaningful weighted statistics (rct, lct, mkl)."""
    return float(np.clip(mask, 0, 1).sum()) >= MIN_WEIGHT


def enough_samples(selection: np.ndarray) -> bool:
    """True when a boolean `inside` selection holds enough pixels for quantile statistics (idt, sot).

    Checked on the selection itself, not on the mask's weight: a soft mask (all values <= the
    threshold) can carry plenty of weight yet select no pixel at all.
    """
    return int(np.count_nonzero(selection)) >= MIN_WEIGHT
