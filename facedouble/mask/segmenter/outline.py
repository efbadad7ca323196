"""The outline input of an outline segmenter (model.SegmenterConfig.prior = "outline"): the face's outline
from its landmarks, filled, in the segmenter's aligned pixels."""

from __future__ import annotations

import numpy as np

from facedouble.face.mesh import outline_mask


def points_outline(aligned_mesh: np.ndarray | None, aligned_landmarks: np.ndarray, size: int,
                   scale: float = 1.0) -> np.ndarray:
    """uint8 (size, size) filled outline from points in aligned pixels of a crop `scale` times smaller than
    `size` (a face job at the model's resolution seen by a 256 px segmenter: scale = 256 / R)."""
    mesh = None if aligned_mesh is None else np.asarray(aligned_mesh, np.float64) * scale
    filled = outline_mask(mesh, np.asarray(aligned_landmarks, np.float64) * scale, size)
    return np.round(filled * 255).astype(np.uint8)


def meta_outline(meta, size: int) -> np.ndarray:
    """uint8 (size, size) filled outline of a faceset face (its metadata: mesh or 68 landmarks) at `size`."""
    mesh = None if meta.mesh is None else meta.mesh @ meta.transform[:, :2].T + meta.transform[:, 2]
    return points_outline(mesh, meta.aligned_landmarks, size, size / meta.size)
