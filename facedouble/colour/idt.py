"""`idt`: iterative distribution transfer (Pitie, Kokaram & Dahyot 2005).

Repeatedly rotate the colour space at random and match each rotated axis's 1-D distribution (masked
pixels only) by quantile mapping; the full 3-D colour distribution converges to the target's. A fixed
seed keeps renders reproducible (and shards identical to a single run).
"""

from __future__ import annotations

import numpy as np

from facedouble.colour._stats import sample_setup, to_image

ITERATIONS = 10
QUANTILES = 256
SEED = 0


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A random 3x3 orthonormal basis."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def quantiles(values: np.ndarray) -> np.ndarray:
    """QUANTILES evenly spaced quantiles (nearest rank); one sort, far cheaper than np.quantile's
    partition per quantile."""
    ordered = np.sort(values)
    return ordered[np.linspace(0, len(ordered) - 1, QUANTILES).round().astype(np.intp)]


def match_1d(values: np.ndarray, src_samples: np.ndarray, tgt_samples: np.ndarray) -> np.ndarray:
    """Map `values` so the distribution of `src_samples` becomes that of `tgt_samples` (quantiles)."""
    src_q = quantiles(src_samples)
    tgt_q = quantiles(tgt_samples)
    # np.interp needs increasing x; tiny ramps break ties on flat stretches of the source.
    src_q = src_q + np.arange(QUANTILES) * 1e-9
    return np.interp(values, src_q, tgt_q)


def idt(src: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Masked iterative distribution transfer; float32 RGB (H, W, 3) in [0, 1]."""
    setup = sample_setup(src, target, mask, SEED)
    if setup is None:  # too few pixels to take quantiles from: leave the face as is
        return src
    selected, pixels, tgt, rng = setup
    for _ in range(ITERATIONS):
        rot = random_rotation(rng)
        proj = pixels @ rot
        tgt_proj = tgt @ rot
        for axis in range(3):
            proj[:, axis] = match_1d(proj[:, axis], proj[selected, axis], tgt_proj[:, axis])
        pixels = proj @ rot.T
    return to_image(pixels, src.shape)
