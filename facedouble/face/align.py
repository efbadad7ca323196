"""Alignment: a similarity transform (Umeyama) from 68-point landmarks to a mean-face template.

The template is the mean shape of points 17-67 (brows, nose, eyes, mouth; the jaw line moves with
pose, so it is left out, as in DeepFaceLab), in a unit square from brow to chin; derived with
generalized Procrustes analysis from GRID footage (tools/derive_template.py).
"""

from __future__ import annotations

import cv2
import numpy as np

from facedouble.errors import FacedoubleError
from facedouble.face.template import TEMPLATE_17_67
from facedouble.face.types import FACE_TYPE_SHIFT, FACE_TYPES

ALIGN_POINTS = slice(17, 68)


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (2x3) mapping points `src` (N,2) onto `dst` (N,2)."""
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    rot = u @ np.diag(d) @ vt
    scale = (s * d).sum() / src_c.var(0).sum()
    mat = np.zeros((2, 3))
    mat[:, :2] = scale * rot
    mat[:, 2] = dst_mean - scale * rot @ src_mean
    return mat


def template_in_output(face_type: str, size: int) -> np.ndarray:
    """Template points 17-67 in output pixels for `face_type` at `size`."""
    if face_type not in FACE_TYPES:
        raise FacedoubleError(f"unknown face type {face_type!r}; choose from {', '.join(FACE_TYPES)}")
    pad = FACE_TYPES[face_type]
    unit = TEMPLATE_17_67 + np.array([0.0, FACE_TYPE_SHIFT[face_type]])
    return (unit + pad) * (size / (1 + 2 * pad))


def face_transform(landmarks68: np.ndarray, face_type: str, size: int) -> np.ndarray:
    """2x3 similarity: frame pixels -> aligned face pixels."""
    return umeyama(landmarks68[ALIGN_POINTS], template_in_output(face_type, size))


def invert(mat: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine transform (float64)."""
    return cv2.invertAffineTransform(np.asarray(mat, np.float64))


def to3x3(affine: np.ndarray) -> np.ndarray:
    """2x3 affine as a 3x3 homogeneous matrix, so transforms compose by matrix product."""
    return np.vstack([np.asarray(affine, np.float64), [0.0, 0.0, 1.0]])


def transform_points(points: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine to (N,2) points."""
    return points[:, :2] @ mat[:, :2].T + mat[:, 2]


def warp_face(frame_rgb: np.ndarray, mat: np.ndarray, size: int) -> np.ndarray:
    """Aligned face crop; Lanczos keeps detail when the face is upscaled."""
    return cv2.warpAffine(frame_rgb, mat, (size, size), flags=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REPLICATE)


def eye_centres(landmarks68: np.ndarray) -> np.ndarray:
    """(2, 2): centre of the image-left eye (points 36-41) and the image-right eye (42-47)."""
    return np.stack([landmarks68[36:42].mean(0), landmarks68[42:48].mean(0)])


def inter_ocular(landmarks68: np.ndarray) -> float:
    """Distance between the eye centres of 68 points: the face's unit of size (merge regions, report errors)."""
    left, right = eye_centres(landmarks68)
    return float(np.linalg.norm(left - right))
