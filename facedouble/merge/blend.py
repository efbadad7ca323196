"""Putting a swapped face back into the frame: warp, sharpen, scale, feathered alpha or Poisson blend.

The face and its mask stay float32 from the model to the final composite and are quantised to 8 bits
once, by rounding (not truncation), which avoids the banding and the half-level darkening of 8-bit
intermediate masks. Pixels where the warped alpha is exactly 0 are copied bit for bit.
"""

from __future__ import annotations

import cv2
import numpy as np

from facedouble.errors import FacedoubleError
from facedouble.face.align import to3x3

BLEND_MODES = ("alpha", "poisson")


def scale_about_centre(inverse: np.ndarray, size: int, scale: float) -> np.ndarray:
    """aligned->source transform that shows the aligned face `scale` times larger around its centre."""
    if scale == 1.0:
        return np.asarray(inverse, np.float64)
    c = (size - 1) / 2.0
    # aligned pixel p is shown where the unscaled crop had c + (p - c) * scale: a larger footprint
    zoom = np.array([[scale, 0.0, c * (1 - scale)], [0.0, scale, c * (1 - scale)], [0.0, 0.0, 1.0]])
    return (to3x3(inverse) @ zoom)[:2]


def sharpen(face: np.ndarray, amount: float) -> np.ndarray:
    """Unsharp mask, radius ~1/128 of the face side; `amount` 0 = off, 1 = strong."""
    if amount <= 0:
        return face
    sigma = max(0.8, face.shape[0] / 128.0)
    blurred = cv2.GaussianBlur(face, (0, 0), sigma)
    return np.clip(face + amount * (face - blurred), 0.0, 1.0)


def warp_roi(inverse: np.ndarray, size: int, frame_shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    """Frame box (x0, y0, x1, y1) covered by the aligned square under `inverse`; None if off-frame."""
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float64)
    pts = corners @ np.asarray(inverse, np.float64).T
    h, w = frame_shape[:2]
    x0 = max(int(np.floor(pts[:, 0].min())) - 2, 0)
    y0 = max(int(np.floor(pts[:, 1].min())) - 2, 0)
    x1 = min(int(np.ceil(pts[:, 0].max())) + 2, w)
    y1 = min(int(np.ceil(pts[:, 1].max())) + 2, h)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def composite(frame: np.ndarray, face: np.ndarray, alpha: np.ndarray, inverse: np.ndarray,
              mode: str = "alpha", frame_alpha: np.ndarray | None = None) -> tuple[int, int, int, int] | None:
    """Blend `face` (float32 RGB (R, R, 3) in [0, 1]) into `frame` (uint8 RGB, modified in place).

    `alpha` is the (R, R) feathered mask, `inverse` the aligned->frame 2x3 affine. The warped alpha is
    max-accumulated into `frame_alpha` (float32 (H, W)) when given, for mattes and statistics.
    Returns the frame box (x0, y0, x1, y1) of the pixels it changed, or None if none.
    """
    if mode not in BLEND_MODES:
        raise FacedoubleError(f"unknown blend mode {mode!r} (choose from {', '.join(BLEND_MODES)})")
    size = face.shape[0]
    roi = warp_roi(inverse, size, frame.shape)
    if roi is None:
        return None
    x0, y0, x1, y1 = roi
    shift = np.asarray(inverse, np.float64).copy()
    shift[:, 2] -= (x0, y0)
    dsize = (x1 - x0, y1 - y0)
    warped = cv2.warpAffine(face.astype(np.float32), shift, dsize, flags=cv2.INTER_CUBIC,
                            borderMode=cv2.BORDER_REPLICATE)
    a = cv2.warpAffine(alpha.astype(np.float32), shift, dsize, flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    a = np.clip(a, 0.0, 1.0)
    # Bilinear interpolation leaves ~1e-8 residues far from the face; treat those as outside.
    a[a < 1.0 / 1024] = 0.0
    if not a.any():
        return None
    region = frame[y0:y1, x0:x1]
    base = region.astype(np.float32)
    face255 = np.clip(warped, 0.0, 1.0) * 255.0
    if mode == "poisson":
        face255 = poisson(face255, region, a)
    out = base + (face255 - base) * a[..., None]  # a == 0 gives base exactly
    np.copyto(region, np.clip(np.rint(out), 0, 255).astype(np.uint8), where=(a > 0)[..., None])
    if frame_alpha is not None:
        np.maximum(frame_alpha[y0:y1, x0:x1], a, out=frame_alpha[y0:y1, x0:x1])
    ys, xs = np.nonzero(a)
    return x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1


def poisson(face255: np.ndarray, region: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Seamless clone (gradient-domain) of the face into `region`; float32 0..255 result.

    The clone's boundary is the alpha>0.5 core, so the face takes the target's lighting at its edge;
    the caller still blends with the feathered alpha, which keeps everything outside the mask exact.
    """
    core = (alpha > 0.5).astype(np.uint8) * 255
    # seamlessClone needs a margin between the mask and the image border.
    core[:2] = 0
    core[-2:] = 0
    core[:, :2] = 0
    core[:, -2:] = 0
    ys, xs = np.nonzero(core)
    if len(xs) < 16:
        return face255
    x, y, w, h = cv2.boundingRect(np.column_stack([xs, ys]).astype(np.int32))
    centre = (x + w // 2, y + h // 2)
    src = np.clip(np.rint(face255), 0, 255).astype(np.uint8)
    try:
        cloned = cv2.seamlessClone(src, np.ascontiguousarray(region), core, centre, cv2.NORMAL_CLONE)
    except cv2.error:
        return face255
    return cloned.astype(np.float32)
