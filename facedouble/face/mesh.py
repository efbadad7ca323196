"""Contours of the dense face mesh (MediaPipe FaceMesh, 478 points) and polygons filled as masks."""

from __future__ import annotations

import cv2
import numpy as np

# MediaPipe FaceMesh FACEMESH_FACE_OVAL vertices, in order around the face from the forehead: the mesh's
# silhouette, which covers the forehead, unlike the hull of the 68 points.
FACE_OVAL: tuple[int, ...] = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148,
    176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)


def polygon_mask(points: np.ndarray, size: int, convex: bool = True) -> np.ndarray:
    """Filled polygon (or convex hull of `points`) as float32 (size, size), anti-aliased edges."""
    shift = 4  # sub-pixel vertex precision: 1/16 px, so the edge does not jump by whole pixels
    pts = np.round(np.asarray(points, np.float64) * (1 << shift)).astype(np.int32)
    if convex:
        pts = cv2.convexHull(pts)
    canvas = np.zeros((size, size), np.uint8)
    cv2.fillPoly(canvas, [pts.reshape(-1, 1, 2)], 255, lineType=cv2.LINE_AA, shift=shift)
    return canvas.astype(np.float32) / 255.0


def outline_mask(aligned_mesh: np.ndarray | None, aligned_landmarks: np.ndarray, size: int) -> np.ndarray:
    """The face's outline filled, float32 (size, size): the mesh's face oval (forehead to chin) when there is a
    dense mesh, the hull of some other mesh, else the hull of the 68 landmarks (brows to chin).

    Merge's `mesh` mask and the segmenter's outline input (facedouble.mask.segmenter) are this one shape."""
    if aligned_mesh is not None and len(aligned_mesh) >= 468:
        return polygon_mask(np.asarray(aligned_mesh)[list(FACE_OVAL)], size, convex=False)
    if aligned_mesh is not None and len(aligned_mesh) > 2:
        return polygon_mask(aligned_mesh, size, convex=True)
    return polygon_mask(aligned_landmarks, size, convex=True)
