"""`lct`: linear colour transfer by covariance (Hertzmann 2001), symmetric square-root variant."""

from __future__ import annotations

import numpy as np

from facedouble.colour._stats import apply_linear, gaussian_stats, sym_sqrt


def lct(src: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """x' = Ct^1/2 Cs^-1/2 (x - ms) + mt with masked RGB means/covariances; float32 RGB in [0, 1]."""
    stats = gaussian_stats(src, target, mask)
    if stats is None:
        return src
    pixels, ms, cs, mt, ct = stats
    return apply_linear(pixels, ms, sym_sqrt(ct) @ sym_sqrt(cs, inverse=True), mt, src.shape)
