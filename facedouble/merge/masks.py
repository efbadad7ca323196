"""Face masks in aligned (model) space: landmark hull, mesh face oval, the model's learned mask, hands, xseg.

A mode is a `*`-product of parts; a part with a `-` prefix multiplies by 1 - that mask (an occluder:
`hull*-hands` is the landmark hull with every detected hand cut out, see facedouble.mask.hands).

All masks are float32 (R, R) in [0, 1] at the model resolution R. Erosion and feathering are given in
percent of R, so the same settings look the same at 64 px and at 512 px.
"""

from __future__ import annotations

import cv2
import numpy as np

from facedouble.errors import FacedoubleError
from facedouble.face.mesh import outline_mask, polygon_mask


def _products() -> tuple[str, ...]:
    """Every product in canonical order: [hull|mesh] [*xseg] [*learned] [*-hands], at least one positive part."""
    out = []
    for outline in ("hull", "mesh", None):
        for xseg in (False, True):
            for learned in (False, True):
                for hands in (False, True):
                    parts = [p for p, on in ((outline, outline), ("xseg", xseg), ("learned", learned)) if on]
                    if parts:
                        out.append("*".join(parts + ["-hands"] * hands))
    return tuple(out)


_FIRST = ("hull", "mesh", "learned", "hull*learned", "mesh*learned",
          "hull*-hands", "mesh*-hands", "hull*learned*-hands", "mesh*learned*-hands")
# `xseg` is the trained face segmenter (facedouble.mask.segmenter; the shipped generic model unless
# $FACEDOUBLE_MASK_MODEL names another), run on each face's crop of the frame: it knows hands, glasses
# and other occluders, and the forehead up to the hairline.
MASK_MODES = _FIRST + tuple(m for m in _products() if m not in _FIRST)
XSEG_MODEL_ENV = "FACEDOUBLE_MASK_MODEL"


def uses_hands(mode: str) -> bool:
    """Whether `mode` needs the per-face hand mask (MediaPipe Hands, tens of ms a face)."""
    return "-hands" in mode.split("*")


def uses_xseg(mode: str) -> bool:
    """Whether `mode` needs the segmenter's mask of each face (a few ms a face)."""
    return "xseg" in mode.split("*")


def hands_for_mode(mode: str, frame_rgb: np.ndarray, to_aligned: np.ndarray, size: int,
                   landmarks: np.ndarray | None = None, mesh: np.ndarray | None = None
                   ) -> np.ndarray | dict[str, np.ndarray] | None:
    """The frame-derived masks of one face that `mode` needs, else None.

    The hand mask alone (1 = hand, aligned pixels) for the `-hands` modes; for modes with `xseg` a dict
    {"xseg": face-visible mask, "hands": hand mask (if used)}. build_mask takes either. `landmarks` and
    `mesh` (the face's points in the crop's pixels) are what a segmenter that takes the outline is given.
    """
    hands = None
    if uses_hands(mode):
        from facedouble.mask.hands import hands_mask

        hands = hands_mask(frame_rgb, to_aligned, size)
    if not uses_xseg(mode):
        return hands
    import os

    from facedouble.mask.segmenter.apply import segment_frame_faces

    out = {"xseg": segment_frame_faces(frame_rgb, to_aligned, size, os.environ.get(XSEG_MODEL_ENV) or None,
                                       landmarks, mesh)}
    if hands is not None:
        out["hands"] = hands
    return out


def hull_mask(aligned_landmarks: np.ndarray, size: int) -> np.ndarray:
    """Convex hull of the 68 landmarks: brows to chin (the 68 points have no forehead)."""
    return polygon_mask(aligned_landmarks, size, convex=True)


def mesh_mask(aligned_mesh: np.ndarray | None, size: int) -> np.ndarray | None:
    """Face-oval polygon of the dense mesh (covers the forehead); None without a mesh."""
    if aligned_mesh is None or len(aligned_mesh) == 0:
        return None
    return outline_mask(aligned_mesh, aligned_mesh, size)


def build_mask(mode: str, size: int, aligned_landmarks: np.ndarray, aligned_mesh: np.ndarray | None,
               learned: np.ndarray | None, hands: np.ndarray | dict[str, np.ndarray] | None = None) -> np.ndarray:
    """The raw (unfeathered) mask for `mode` (one of MASK_MODES); `hands` from hands_for_mode."""
    if mode not in MASK_MODES:
        raise FacedoubleError(f"unknown mask mode {mode!r} (choose from {', '.join(MASK_MODES)})")
    parts = mode.split("*")
    xseg = hands.get("xseg") if isinstance(hands, dict) else None
    if isinstance(hands, dict):
        hands = hands.get("hands")
    out = np.ones((size, size), np.float32)
    for part in parts:
        if part == "xseg":
            if xseg is None:
                raise FacedoubleError("mask mode uses the segmenter (xseg) but no segmenter mask was computed")
            m = np.clip(xseg.astype(np.float32), 0.0, 1.0)
        elif part == "hull":
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
