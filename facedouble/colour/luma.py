"""Rec. 601 luma, the one brightness measure of colour frames (merge's flicker check, the watermark)."""

from __future__ import annotations

import numpy as np


def luma(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma (0.299 R + 0.587 G + 0.114 B) of an (..., 3) RGB array, as float32 on its scale."""
    rgb = np.asarray(rgb).astype(np.float32, copy=False)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
