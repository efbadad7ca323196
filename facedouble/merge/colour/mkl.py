"""`mkl`: Monge-Kantorovich linear colour transfer (Pitie & Kokaram 2007).

The optimal-transport map between two Gaussians: T = Cs^-1/2 (Cs^1/2 Ct Cs^1/2)^1/2 Cs^-1/2. Unlike
`lct` it rotates colours as little as possible while matching the covariance exactly.
"""

from __future__ import annotations

import numpy as np

from facedouble.merge.colour._stats import enough, mean_cov, sym_sqrt, weights


def mkl(src: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Masked Monge-Kantorovich transfer; float32 RGB (H, W, 3) in [0, 1]."""
    if not enough(mask):
        return src
    w = weights(mask)
    s = src.reshape(-1, 3).astype(np.float64)
    ms, cs = mean_cov(s, w)
    mt, ct = mean_cov(target.reshape(-1, 3).astype(np.float64), w)
    cs_half = sym_sqrt(cs)
    cs_inv_half = sym_sqrt(cs, inverse=True)
    transform = cs_inv_half @ sym_sqrt(cs_half @ ct @ cs_half) @ cs_inv_half
    out = (s - ms) @ transform.T + mt
    return np.clip(out, 0.0, 1.0).reshape(src.shape).astype(np.float32)
