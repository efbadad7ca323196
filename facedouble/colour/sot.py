"""`sot`: sliced optimal transport colour transfer (Rabin et al. 2011; as DeepFaceLab's color_transfer_sot).

Each step projects the masked colours on a few random directions, matches each 1-D projection to
the target's by quantiles and moves every pixel by the mean of those 1-D displacements (a gradient
step on the sliced Wasserstein distance). Seeded for reproducibility.
"""

from __future__ import annotations

import numpy as np

from facedouble.colour._stats import sample_setup, to_image
from facedouble.colour.idt import match_1d

STEPS = 10
DIRECTIONS = 6
SEED = 0


def sot(src: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Masked sliced-OT transfer; float32 RGB (H, W, 3) in [0, 1]."""
    setup = sample_setup(src, target, mask, SEED)
    if setup is None:  # too few pixels to take quantiles from: leave the face as is
        return src
    selected, pixels, tgt, rng = setup
    for _ in range(STEPS):
        dirs = rng.normal(size=(DIRECTIONS, 3))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        advect = np.zeros_like(pixels)
        for d in dirs:
            proj = pixels @ d
            moved = match_1d(proj, proj[selected], tgt @ d)
            advect += np.outer(moved - proj, d)
        # 3/DIRECTIONS: with 3 orthogonal directions this is a full 1-D matching on each.
        pixels = pixels + advect * (3.0 / DIRECTIONS)
    return to_image(pixels, src.shape)
