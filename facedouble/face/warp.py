"""Smooth random warps of an aligned face (DeepFaceLab's training augmentation), shared by the trainers."""

from __future__ import annotations

import cv2
import numpy as np


def random_warp_maps(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """DFL's smooth random grid warp: jitter a coarse grid's inner points, upsample to per-pixel maps."""
    cell = [size // (2 ** i) for i in range(1, 4)][rng.integers(3)]
    n = size // cell + 1
    grid = np.broadcast_to(np.linspace(0, size, n), (n, n)).copy()
    mapx, mapy = grid, grid.T.copy()
    mapx[1:-1, 1:-1] += rng.normal(size=(n - 2, n - 2)) * (cell * 0.24)
    mapy[1:-1, 1:-1] += rng.normal(size=(n - 2, n - 2)) * (cell * 0.24)
    half = cell // 2
    big = size + cell
    mapx = cv2.resize(mapx, (big, big))[half:half + size, half:half + size].astype(np.float32)
    mapy = cv2.resize(mapy, (big, big))[half:half + size, half:half + size].astype(np.float32)
    return mapx, mapy
