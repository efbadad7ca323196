"""Head pose (yaw, pitch, roll in degrees) from 68-point landmarks.

A scaled-orthographic camera is fitted to six points of a generic 3-D face (nose tip, chin, outer eye
corners, mouth corners; millimetres, nose tip at the origin, x to the image right, y up, z toward the
camera) by least squares; the fitted rows are replaced by the nearest orthonormal pair (polar
decomposition). Orthographic suits faces that fill a small part of the field of view, and it needs no
camera intrinsics.
Yaw > 0: the face turns toward the image right; pitch > 0: chin up; roll > 0: clockwise in the image.
"""

from __future__ import annotations

import numpy as np

_MODEL_POINTS = {  # 68-point index -> generic 3-D position (mm)
    30: (0.0, 0.0, 0.0),  # nose tip
    8: (0.0, -63.6, -12.5),  # chin
    36: (-43.3, 32.7, -26.0),  # image-left eye, outer corner
    45: (43.3, 32.7, -26.0),  # image-right eye, outer corner
    48: (-28.9, -28.9, -24.1),  # mouth corners
    54: (28.9, -28.9, -24.1),
}
_INDEX = np.array(list(_MODEL_POINTS))
_MODEL = np.array(list(_MODEL_POINTS.values()), np.float64)
_MODEL_C = _MODEL - _MODEL.mean(0)
_MODEL_PINV = np.linalg.pinv(_MODEL_C)


def head_pose(landmarks68: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) in degrees of a face given its 68 landmarks (image pixels, y down)."""
    pts = landmarks68[_INDEX].astype(np.float64)
    pts = pts - pts.mean(0)
    pts[:, 1] *= -1  # image y points down, the model's up
    rows = (_MODEL_PINV @ pts).T  # (2, 3): scaled first two rows of the rotation
    u, _, vt = np.linalg.svd(rows, full_matrices=False)
    r1, r2 = u @ vt  # nearest orthonormal rows (polar decomposition): in-plane rotation stays exact
    r3 = np.cross(r1, r2)
    yaw = np.degrees(np.arcsin(np.clip(-r3[0], -1, 1)))
    pitch = np.degrees(np.arcsin(np.clip(-r3[1], -1, 1)))
    roll = np.degrees(np.arctan2(r1[1], r1[0]))
    return np.array([yaw, pitch, roll])
