"""`rct`: Reinhard et al. 2001 colour transfer, per-channel mean/std matching in CIE Lab."""

from __future__ import annotations

import cv2
import numpy as np

from facedouble.colour._stats import enough, weights


def rct(src: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Match the masked Lab mean and standard deviation of `src` to those of `target`.

    src, target: float32 RGB (H, W, 3) in [0, 1]; mask: (H, W) in [0, 1]. Returns float32 RGB.
    """
    if not enough(mask):
        return src
    src_lab = cv2.cvtColor(src.astype(np.float32), cv2.COLOR_RGB2Lab).reshape(-1, 3).astype(np.float64)
    tgt_lab = cv2.cvtColor(target.astype(np.float32), cv2.COLOR_RGB2Lab).reshape(-1, 3).astype(np.float64)
    w = weights(mask)
    total = w.sum()
    out = np.empty_like(src_lab)
    for c in range(3):
        ms = (src_lab[:, c] * w).sum() / total
        mt = (tgt_lab[:, c] * w).sum() / total
        ss = np.sqrt(((src_lab[:, c] - ms) ** 2 * w).sum() / total)
        st = np.sqrt(((tgt_lab[:, c] - mt) ** 2 * w).sum() / total)
        # Floor the source spread: a flat channel would otherwise be amplified without bound.
        out[:, c] = (src_lab[:, c] - ms) * (st / max(ss, 1e-3)) + mt
    out[:, 0] = np.clip(out[:, 0], 0, 100)
    out[:, 1:] = np.clip(out[:, 1:], -127, 127)
    rgb = cv2.cvtColor(out.reshape(src.shape).astype(np.float32), cv2.COLOR_Lab2RGB)
    return np.clip(rgb, 0.0, 1.0)
