"""Which part of the face the model replaces: region mode (dubbing) and parts kept from the plate.

- `region` (`--region`): `face` (the whole masked face, the default) or only the `mouth`, the
  `lower-face` (nose base to chin) or the `eyes` (eyes and brows). Dubbing swaps the mouth or lower
  face from a model trained on the new performance and keeps the rest of the actor's face untouched:
  every pixel outside the region's grown, feathered outline is the plate, bit for bit.
- `keep_from_plate` (`--keep-from-plate mouth,eyes`): the performer's mouth interior (inside the inner
  lip contour: teeth, tongue) and/or eyes (inside the eyelid contour: iris, sclera) stay the plate's,
  the artist's choice when the model's teeth or gaze fail. Outside the kept contours, grown by their
  feather, the render is exactly the normal merge's.

Both are drawn from the target's own landmarks (the plate's geometry, in model-crop pixels): the dense
mesh's lip and eye contours when the faceset has the 478-point mesh, else the 68 points. Sizes are in
inter-ocular distances (IOD), so a setting looks the same at 64 px and at 512 px. Every mask ramps over a
known band (a smoothstep of the signed distance to the outline), so "inside" is exactly 1 and "outside"
exactly 0: the tests can check pixels for equality, not closeness.
"""

from __future__ import annotations

import cv2
import numpy as np

from facedouble.errors import FacedoubleError
from facedouble.face.align import inter_ocular

REGIONS = ("face", "mouth", "lower-face", "eyes")
PLATE_PARTS = ("mouth", "eyes")
NO_PARTS = "none"

# MediaPipe FaceMesh contours (face_mesh_connections.py), as closed polygons in order.
MESH_INNER_LIPS = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
MESH_OUTER_LIPS = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
MESH_RIGHT_EYE = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
MESH_LEFT_EYE = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)

# 68-point equivalents (iBUG order).
LM_INNER_LIPS = tuple(range(60, 68))
LM_OUTER_LIPS = tuple(range(48, 60))
LM_EYES = (tuple(range(36, 42)), tuple(range(42, 48)))
LM_BROWS = (tuple(range(17, 22)), tuple(range(22, 27)))
LM_LOWER_FACE = (*range(2, 15), *range(31, 36))  # jaw from nose-base height round the chin, and the nose base

# (grow, feather) of each region's outline, in IOD: the outline is grown by `grow`, then ramps from 1 to 0
# over +-`feather` around it. The mouth is grown generously: a dubbed mouth opens wider or narrower than
# the plate's, and its chin and cheeks move with it.
REGION_SHAPE: dict[str, tuple[float, float]] = {
    "mouth": (0.30, 0.12),
    "lower-face": (0.12, 0.12),
    "eyes": (0.15, 0.10),
}
# Ramp half-width of the kept plate parts, in IOD (at 64 px ~1 px, at 256 px ~3 px): the lids and lips
# are thin, a wider ramp would show the model's lids through the plate's eyes.
PLATE_FEATHER = 0.045
MIN_FEATHER_PX = 0.75


def parse_plate_parts(text: str) -> tuple[str, ...]:
    """`"mouth,eyes"` -> ("mouth", "eyes"); `"none"` or "" -> (); one-line FacedoubleError for other names."""
    names = [p.strip() for p in text.replace("+", ",").split(",") if p.strip()]
    if names == [NO_PARTS]:
        return ()
    bad = [n for n in names if n not in PLATE_PARTS]
    if bad:
        raise FacedoubleError(f"keep_from_plate: unknown part {bad[0]!r} (choose {NO_PARTS} or a comma list of "
                              f"{', '.join(PLATE_PARTS)})")
    return tuple(p for p in PLATE_PARTS if p in names)


def check_region(region: str) -> str:
    """`region` if it is one of REGIONS, else a one-line FacedoubleError."""
    if region not in REGIONS:
        raise FacedoubleError(f"unknown region {region!r} (choose from {', '.join(REGIONS)})")
    return region


def _has_mesh(mesh: np.ndarray | None) -> bool:
    return mesh is not None and len(mesh) >= 468


def signed_distance(polygons: list[np.ndarray], size: int) -> np.ndarray:
    """Signed distance (px, + inside) to the outline of the union of filled `polygons` ((N, 2) each)."""
    shift = 2  # 1/4 px vertex precision
    canvas = np.zeros((size, size), np.uint8)
    for poly in polygons:
        if len(poly) >= 3:
            pts = np.round(np.asarray(poly, np.float64)[:, :2] * (1 << shift)).astype(np.int32)
            cv2.fillPoly(canvas, [pts.reshape(-1, 1, 2)], 1, lineType=cv2.LINE_8, shift=shift)
    inside = cv2.distanceTransform(canvas, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    outside = cv2.distanceTransform(1 - canvas, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    # Distances are to the nearest pixel centre of the other side; the outline lies half a pixel away.
    return np.where(canvas > 0, inside - 0.5, 0.5 - outside).astype(np.float32)


def ramp(distance: np.ndarray, grow: float, feather: float) -> np.ndarray:
    """Smoothstep from 0 (distance <= -grow - feather) to 1 (distance >= feather - grow), exact at both ends."""
    feather = max(feather, 1e-3)
    t = np.clip((distance + grow + feather) / (2.0 * feather), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def _convex(points: np.ndarray) -> np.ndarray:
    return cv2.convexHull(np.asarray(points, np.float32)[:, :2])[:, 0]


def region_polygons(region: str, landmarks: np.ndarray, mesh: np.ndarray | None) -> list[np.ndarray]:
    """The outline(s) of `region` (not `face`) before growing, in the landmarks' pixels."""
    if region == "mouth":
        lips = mesh[list(MESH_OUTER_LIPS)] if _has_mesh(mesh) else landmarks[list(LM_OUTER_LIPS)]
        return [_convex(lips)]
    if region == "lower-face":
        return [_convex(landmarks[list(LM_LOWER_FACE)])]
    if region == "eyes":
        return [_convex(np.concatenate([landmarks[list(eye)], landmarks[list(brow)]]))
                for eye, brow in zip(LM_EYES, LM_BROWS, strict=True)]
    raise FacedoubleError(f"region {region!r} has no outline")


def region_mask(region: str, size: int, landmarks: np.ndarray, mesh: np.ndarray | None) -> np.ndarray | None:
    """Soft (R, R) mask of the swapped region, exactly 0 beyond the grown outline + feather; None for `face`."""
    check_region(region)
    if region == "face":
        return None
    grow, feather = REGION_SHAPE[region]
    unit = inter_ocular(landmarks)
    distance = signed_distance(region_polygons(region, landmarks, mesh), size)
    return ramp(distance, grow * unit, max(feather * unit, MIN_FEATHER_PX))


def region_reach(region: str, landmarks: np.ndarray) -> float:
    """How far (px) the region's mask reaches beyond its outline (grow + feather); 0 for `face`."""
    if region == "face":
        return 0.0
    grow, feather = REGION_SHAPE[region]
    unit = inter_ocular(landmarks)
    return grow * unit + max(feather * unit, MIN_FEATHER_PX)


def plate_polygons(part: str, landmarks: np.ndarray, mesh: np.ndarray | None) -> list[np.ndarray]:
    """Contours of a kept plate part: the inner lips (mouth) or both eyelid openings (eyes)."""
    if part == "mouth":
        return [mesh[list(MESH_INNER_LIPS)] if _has_mesh(mesh) else landmarks[list(LM_INNER_LIPS)]]
    if part == "eyes":
        if _has_mesh(mesh):
            return [mesh[list(MESH_RIGHT_EYE)], mesh[list(MESH_LEFT_EYE)]]
        return [landmarks[list(eye)] for eye in LM_EYES]
    raise FacedoubleError(f"unknown plate part {part!r}")


def plate_feather(landmarks: np.ndarray) -> float:
    """Ramp half-width (px) of the kept plate parts for this face."""
    return max(PLATE_FEATHER * inter_ocular(landmarks), MIN_FEATHER_PX)


def plate_mask(parts: tuple[str, ...], size: int, landmarks: np.ndarray, mesh: np.ndarray | None) -> np.ndarray | None:
    """Soft (R, R) mask of the plate parts to keep (1 = the plate's pixel), None when none are kept.

    The ramp is centred on the contour: exactly 1 from `plate_feather` inside it, exactly 0 from
    `plate_feather` outside. A closed mouth has no interior and keeps (almost) nothing.
    """
    if not parts:
        return None
    polygons = [p for part in parts for p in plate_polygons(part, landmarks, mesh)]
    return ramp(signed_distance(polygons, size), 0.0, plate_feather(landmarks))


def unscaled(points: np.ndarray | None, size: int, scale: float) -> np.ndarray | None:
    """Model-crop points moved to where they land once the crop is shown `scale` times larger (blend.
    scale_about_centre): masks drawn from the plate's landmarks must stay on the plate's features."""
    if points is None or scale == 1.0:
        return points
    c = (size - 1) / 2.0
    out = np.asarray(points, np.float64).copy()
    out[:, :2] = c + (out[:, :2] - c) / scale
    return out


def face_masks(settings, base: np.ndarray, landmarks: np.ndarray,  # noqa: ANN001 - FaceSettings (no cycle)
               mesh: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(colour-statistics weights, compositing alpha) of one face from its refined mask `base`.

    `settings` gives `region`, `keep_from_plate` and `scale`. The region restricts both the colour
    statistics and the alpha (a dubbed mouth is matched to the plate around the mouth); the kept plate
    parts only cut the alpha, so everywhere else the render is the normal merge's, pixel for pixel.
    """
    size = base.shape[0]
    lm, me = unscaled(landmarks, size, settings.scale), unscaled(mesh, size, settings.scale)
    stats = alpha = base
    region = region_mask(settings.region, size, lm, me)
    if region is not None:
        stats = alpha = base * region
    keep = plate_mask(parse_plate_parts(settings.keep_from_plate), size, lm, me)
    if keep is not None:
        alpha = alpha * (1.0 - keep)
    return stats, alpha
