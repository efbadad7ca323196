"""Per-face quality metrics for sorting and filtering a faceset, keyed by the CLI's `--by` names.

Each metric maps (aligned RGB image, metadata, context) to a float; `HIGHER_IS_BETTER` says which end
of the sorted list is kept when rejecting the worst faces.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from facedouble.faceset.meta import FaceMeta
from facedouble.faceset.pose import head_pose


def _face_region(image: np.ndarray, meta: FaceMeta) -> np.ndarray:
    """Boolean mask of the 68-point hull in the aligned image."""
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(meta.aligned_landmarks.astype(np.int32)), 1)
    return mask.astype(bool)


def blur(image: np.ndarray, meta: FaceMeta, ctx: dict[str, Any]) -> float:
    """Sharpness: variance of the Laplacian inside the face hull, normalised to a 256 px face."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    lap = cv2.Laplacian(gray, cv2.CV_32F)
    return float(lap[_face_region(image, meta)].var() * (meta.size / 256) ** 2)


def yaw(image: np.ndarray, meta: FaceMeta, ctx: dict[str, Any]) -> float:
    """Head yaw in degrees (0 = frontal)."""
    return float(head_pose(meta.landmarks)[0])


def pitch(image: np.ndarray, meta: FaceMeta, ctx: dict[str, Any]) -> float:
    """Head pitch in degrees (0 = level)."""
    return float(head_pose(meta.landmarks)[1])


def brightness(image: np.ndarray, meta: FaceMeta, ctx: dict[str, Any]) -> float:
    """Mean luma inside the face hull (0-255)."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return float(gray[_face_region(image, meta)].mean())


def _histogram(image: np.ndarray) -> np.ndarray:
    hist = cv2.calcHist([image], [0, 1, 2], None, [8, 8, 8], [0, 256] * 3).ravel()
    return hist / max(hist.sum(), 1)


def histogram(image: np.ndarray, meta: FaceMeta, ctx: dict[str, Any]) -> float:
    """Colour-histogram similarity (Bhattacharyya, 1 = identical) to the faceset's mean histogram."""
    return float(1 - cv2.compareHist(_histogram(image).astype(np.float32),
                                     ctx["mean_histogram"].astype(np.float32), cv2.HISTCMP_BHATTACHARYYA))


def identity(image: np.ndarray, meta: FaceMeta, ctx: dict[str, Any]) -> float:
    """Identity distance to the reference (or the faceset's mean embedding); lower = same person."""
    if meta.embedding is None:
        return float("nan")
    return float(np.linalg.norm(meta.embedding - ctx["reference_embedding"]))


METRICS: dict[str, Callable[[np.ndarray, FaceMeta, dict[str, Any]], float]] = {
    "blur": blur, "yaw": yaw, "pitch": pitch, "brightness": brightness, "histogram": histogram,
    "identity": identity,
}
# For `--reject-worst`: which end is good. yaw/pitch are judged by magnitude.
HIGHER_IS_BETTER = {"blur": True, "yaw": False, "pitch": False, "brightness": True, "histogram": True,
                    "identity": False}
BY_MAGNITUDE = {"yaw", "pitch"}
