"""Per-frame quality metrics of a rendered face against the target face of the same frame.

- pose error: L2 norm of the (yaw, pitch, roll) difference in degrees (faceset.pose.head_pose);
- expression error: mouth (points 48-67) and eye (36-47) landmark distance after a similarity fit on
  the rigid points (nose 27-35, eye corners, jaw ends), divided by the inter-ocular distance;
- flicker: mean absolute frame-to-frame change inside the face region, render over target (1.0 = the
  render is exactly as stable as the original footage);
- SSIM of the face region (Gaussian window, sigma 1.5, grey levels).
"""

from __future__ import annotations

import cv2
import numpy as np

from facedouble.extract.align import umeyama
from facedouble.extract.landmarks import FACE_OVAL
from facedouble.faceset.pose import head_pose

RIGID = np.array([0, 16, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 39, 42, 45])
MOUTH = slice(48, 68)
EYES = slice(36, 48)


def inter_ocular(landmarks: np.ndarray) -> float:
    """Distance between the eye centres."""
    return float(np.linalg.norm(landmarks[36:42].mean(0) - landmarks[42:48].mean(0)))


def pose_error(render: np.ndarray, target: np.ndarray) -> float:
    """Degrees between the head poses of two 68-point landmark sets."""
    return float(np.linalg.norm(head_pose(render) - head_pose(target)))


def expression_error(render: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """(mouth, eyes) landmark error after rigid alignment, in inter-ocular distances."""
    mat = umeyama(render[RIGID], target[RIGID])
    aligned = render @ mat[:, :2].T + mat[:, 2]
    iod = max(inter_ocular(target), 1e-6)
    mouth = float(np.linalg.norm(aligned[MOUTH] - target[MOUTH], axis=1).mean() / iod)
    eyes = float(np.linalg.norm(aligned[EYES] - target[EYES], axis=1).mean() / iod)
    return mouth, eyes


def face_region(shape: tuple[int, int], mesh: np.ndarray | None, landmarks: np.ndarray) -> np.ndarray:
    """Boolean mask of the face: the mesh's face oval when present (covers the forehead), else the hull."""
    mask = np.zeros(shape[:2], np.uint8)
    points = mesh[list(FACE_OVAL)] if mesh is not None else cv2.convexHull(landmarks.astype(np.float32))[:, 0]
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask.astype(bool)


def frame_change(a: np.ndarray, b: np.ndarray, region: np.ndarray) -> float:
    """Mean absolute RGB change between two frames inside `region` (0-255)."""
    if not region.any():
        return 0.0
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16))[region].mean())


def ssim_region(a: np.ndarray, b: np.ndarray, region: np.ndarray) -> float:
    """Mean SSIM of two RGB frames over `region` (grey levels, Gaussian window sigma 1.5)."""
    x = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float64)
    y = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(img: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(img, (11, 11), 1.5)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    ssim = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(ssim[region].mean()) if region.any() else float("nan")
