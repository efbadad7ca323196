"""`lct`: linear colour transfer by covariance (Hertzmann 2001), symmetric square-root variant."""

from __future__ import annotations

import numpy as np

from facedouble.merge.colour._stats import enough, mean_cov, sym_sqrt, weights


def lct(src: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """x' = Ct^1/2 Cs^-1/2 (x - ms) + mt with masked RGB means/covariances; float32 RGB in [0, 1]."""
    if not enough(mask):
        return src
    w = weights(mask)
    s = src.reshape(-1, 3).astype(np.float64)
    ms, cs = mean_cov(s, w)
    mt, ct = mean_cov(target.reshape(-1, 3).astype(np.float64), w)
    transform = sym_sqrt(ct) @ sym_sqrt(cs, inverse=True)
    out = (s - ms) @ transform.T + mt
    return np.clip(out, 0.0, 1.0).reshape(src.shape).astype(np.float32)
