"""Masked statistics and the set-up shared by the colour transfers."""

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


def gaussian_stats(src: np.ndarray, target: np.ndarray, mask: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Masked colour statistics for the linear transfers (lct, mkl), or None when the mask is too small.

    Returns (src pixels (N, 3) float64, src mean, src covariance, target mean, target covariance).
    """
    if not enough(mask):
        return None
    w = weights(mask)
    pixels = src.reshape(-1, 3).astype(np.float64)
    ms, cs = mean_cov(pixels, w)
    mt, ct = mean_cov(target.reshape(-1, 3).astype(np.float64), w)
    return pixels, ms, cs, mt, ct


def apply_linear(pixels: np.ndarray, ms: np.ndarray, transform: np.ndarray, mt: np.ndarray,
                 shape: tuple[int, ...]) -> np.ndarray:
    """x' = transform (x - ms) + mt on (N, 3) pixels, clipped to [0, 1], as float32 of `shape`."""
    return to_image((pixels - ms) @ transform.T + mt, shape)


def to_image(pixels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(N, 3) transferred pixels clipped to [0, 1], as the float32 image of `shape` every transfer returns."""
    return np.clip(pixels, 0.0, 1.0).reshape(shape).astype(np.float32)


def sample_setup(src: np.ndarray, target: np.ndarray, mask: np.ndarray, seed: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.random.Generator] | None:
    """What the sample-based transfers (idt, sot) start from, or None when the mask selects too few pixels.

    Returns (selection of masked pixels, every src pixel (N, 3) float64, the masked target pixels (M, 3)
    float64, a generator seeded with `seed`: a fixed seed keeps renders and shards reproducible).
    """
    selected = inside(mask)
    if not enough_samples(selected):
        return None
    pixels = src.reshape(-1, 3).astype(np.float64)
    tgt = target.reshape(-1, 3).astype(np.float64)[selected]
    return selected, pixels, tgt, np.random.default_rng(seed)
