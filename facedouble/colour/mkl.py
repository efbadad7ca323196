"""`mkl`: Monge-Kantorovich linear colour transfer (Pitie & Kokaram 2007).

The optimal-transport map between two Gaussians: T = Cs^-1/2 (Cs^1/2 Ct Cs^1/2)^1/2 Cs^-1/2. Unlike
`lct` it rotates colours as little as possible while matching the covariance exactly.
"""

from __future__ import annotations

import numpy as np

from facedouble.colour._stats import apply_linear, gaussian_stats, sym_sqrt


def mkl(src: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Masked Monge-Kantorovich transfer; float32 RGB (H, W, 3) in [0, 1]."""
    stats = gaussian_stats(src, target, mask)
    if stats is None:
        return src
    pixels, ms, cs, mt, ct = stats
    cs_half = sym_sqrt(cs)
    cs_inv_half = sym_sqrt(cs, inverse=True)
    return apply_linear(pixels, ms, cs_inv_half @ sym_sqrt(cs_half @ ct @ cs_half) @ cs_inv_half, mt, src.shape)
