"""Face masks in aligned (model) space: landmark hull, mesh face oval, the model's learned mask, hands.

A mode is a `*`-product of parts; a part with a `-` prefix multiplies by 1 - that mask (an occluder:
`hull*-hands` is the landmark hull with every detected hand cut out, see facedouble.mask.hands).

All masks are float32 (R, R) in [0, 1] at the model resolution R. Erosion and feathering are given in
percent of R, so the same settings look the same at 64 px and at 512 px.
"""

from __future__ import annotations

import cv2
import numpy as np

from facedouble.errors import FacedoubleError

# MediaPipe FaceMesh FACEMESH_FACE_OVAL vertices, in order around the face (forehead to chin).
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)

MASK_MODES = ("hull", "mesh", "learned", "hull*learned", "mesh*learned",
              "hull*-hands", "mesh*-hands", "hull*learned*-hands", "mesh*learned*-hands")


def uses_hands(mode: str) -> bool:
    """Whether `mode` needs the per-face hand mask (MediaPipe Hands, tens of ms a face)."""
    return "-hands" in mode.split("*")


def hands_for_mode(mode: str, frame_rgb: np.ndarray, to_aligned: np.ndarray, size: int) -> np.ndarray | None:
    """The hand mask of one face (1 = hand, aligned pixels) if `mode` uses it, else None."""
    if not uses_hands(mode):
        return None
    from facedouble.mask.hands import hands_mask

    return hands_mask(frame_rgb, to_aligned, size)


def polygon_mask(points: np.ndarray, size: int, convex: bool = True) -> np.ndarray:
    """Filled polygon (or convex hull of `points`) as float32 (size, size), anti-aliased edges."""
    shift = 4  # sub-pixel vertex precision: 1/16 px, so the edge does not jump by whole pixels
    pts = np.round(np.asarray(points, np.float64) * (1 << shift)).astype(np.int32)
    if convex:
        pts = cv2.convexHull(pts)
    canvas = np.zeros((size, size), np.uint8)
    cv2.fillPoly(canvas, [pts.reshape(-1, 1, 2)], 255, lineType=cv2.LINE_AA, shift=shift)
    return canvas.astype(np.float32) / 255.0


def hull_mask(aligned_landmarks: np.ndarray, size: int) -> np.ndarray:
    """Convex hull of the 68 landmarks: brows to chin (the 68 points have no forehead)."""
    return polygon_mask(aligned_landmarks, size, convex=True)


def mesh_mask(aligned_mesh: np.ndarray | None, size: int) -> np.ndarray | None:
    """Face-oval polygon of the dense mesh (covers the forehead); None without a mesh."""
    if aligned_mesh is None or len(aligned_mesh) == 0:
        return None
    if len(aligned_mesh) >= 468:
        return polygon_mask(aligned_mesh[list(FACE_OVAL)], size, convex=False)
    return polygon_mask(aligned_mesh, size, convex=True)  # some other mesh: its hull


def build_mask(mode: str, size: int, aligned_landmarks: np.ndarray, aligned_mesh: np.ndarray | None,
               learned: np.ndarray | None, hands: np.ndarray | None = None) -> np.ndarray:
    """The raw (unfeathered) mask for `mode` (one of MASK_MODES); `hands` from hands_for_mode."""
    if mode not in MASK_MODES:
        raise FacedoubleError(f"unknown mask mode {mode!r} (choose from {', '.join(MASK_MODES)})")
    parts = mode.split("*")
    out = np.ones((size, size), np.float32)
    for part in parts:
        if part == "hull":
            m = hull_mask(aligned_landmarks, size)
        elif part == "-hands":
            if hands is None:
                raise FacedoubleError("mask mode cuts out hands but no hand mask was computed")
            m = 1.0 - np.clip(hands.astype(np.float32), 0.0, 1.0)
        elif part == "mesh":
            m = mesh_mask(aligned_mesh, size)
            if m is None:  # faceset without a mesh: fall back to the landmark hull
                m = hull_mask(aligned_landmarks, size)
        else:
            if learned is None:
                raise FacedoubleError("mask mode uses the learned mask but the model gives none")
            m = np.clip(learned.astype(np.float32), 0.0, 1.0)
        out *= m
    return out


def refine_mask(mask: np.ndarray, erode: float, blur: float) -> np.ndarray:
    """Erode (positive) or dilate (negative) by `erode` % of the side, then feather by `blur` %.

    The mask is forced to zero on a border band first, so the feather never ends in a hard edge at
    the crop boundary when the face is pasted back.
    """
    size = mask.shape[0]
    out = mask.astype(np.float32)
    radius = int(round(abs(erode) / 100.0 * size))
    if radius > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        out = cv2.erode(out, kernel) if erode > 0 else cv2.dilate(out, kernel)
    feather = blur / 100.0 * size
    border = max(1, int(np.ceil(feather)))
    out[:border] = 0
    out[-border:] = 0
    out[:, :border] = 0
    out[:, -border:] = 0
    if feather > 0:
        # sigma = feather/2: the ramp from 0 to 1 spans about `feather` pixels on each side of the edge.
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=max(feather / 2.0, 0.3), borderType=cv2.BORDER_CONSTANT)
    return np.clip(out, 0.0, 1.0)
