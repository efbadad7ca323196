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
# match_edge's low-pass, as a fraction of the face size: 4 % pulls the brows' and temples' shading to the
# plate's (seam step 4.7 -> 2.3 L* on the demo model; 8 %: 2.6, 12 %: 2.8) and leaves finer detail to the model
EDGE_SIGMA = 0.04
EDGE_WORK = 128  # px: match_edge works at most at this size (its correction is smooth)


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


def match_edge(face: np.ndarray, plate: np.ndarray, alpha: np.ndarray, depth: float) -> np.ndarray:
    """The face with its low frequencies pulled to the plate's along the mask edge, fading out inward.

    Why: a global colour transfer (rct, ...) matches the face's mean and spread over the whole mask, not
    its lighting across the face. Where the model's shading differs from the plate's (one temple lit, the
    other in shade; brows the model has not learnt yet on the hull's top edge), the mask edge shows a
    step, brighter on one side, darker on the other, however soft the feather. This adds the plate-minus-
    face difference, low-passed (normalised convolution over the feather zone), at full strength on the
    edge and fading to 0 at `depth` % of the face size inside it: the edge matches the plate, the interior
    keeps the model's face. Unlike Poisson blending it does not bleed the surroundings (hair, background)
    into the face: only the zone where the mask is between 0.5 and 1 is sampled.

    face, plate: float32 (R, R, 3) in [0, 1] in model space; alpha: the (R, R) compositing mask. The
    correction is smooth, so above EDGE_WORK px it is computed at that size and scaled up (a 512 px face
    costs what a 128 px one does, a few ms).
    """
    if depth <= 0:
        return face
    size = face.shape[0]
    if size > EDGE_WORK:
        small = (EDGE_WORK, EDGE_WORK)
        delta = _edge_correction(cv2.resize(face, small, interpolation=cv2.INTER_AREA),
                                 cv2.resize(plate, small, interpolation=cv2.INTER_AREA),
                                 cv2.resize(alpha.astype(np.float32), small, interpolation=cv2.INTER_AREA), depth)
        if delta is None:
            return face
        delta = cv2.resize(delta, (size, size), interpolation=cv2.INTER_LINEAR)
    else:
        delta = _edge_correction(face, plate, alpha, depth)
        if delta is None:
            return face
    return np.clip(face + delta, 0.0, 1.0).astype(np.float32)


def _edge_correction(face: np.ndarray, plate: np.ndarray, alpha: np.ndarray, depth: float) -> np.ndarray | None:
    """match_edge's additive correction (R, R, 3) at the inputs' size; None when the mask is too small."""
    size = face.shape[0]
    a = np.clip(alpha.astype(np.float32), 0.0, 1.0)
    core = (a >= 0.5).astype(np.uint8)
    if core.sum() < 16:
        return None
    # sample the inner half of the feather, where the face is mostly the model's and the plate next to it
    # is still face (not the hair or background beyond the edge)
    weight = ((a >= 0.5) & (a < 0.98)).astype(np.float32)
    if weight.sum() < 8:
        weight = cv2.dilate(core, np.ones((3, 3), np.uint8)).astype(np.float32) - cv2.erode(
            core, np.ones((3, 3), np.uint8)).astype(np.float32)
    sigma = max(1.0, EDGE_SIGMA * size)  # low-pass: the shading, not the features (the model keeps its detail)
    diff = (plate.astype(np.float32) - face.astype(np.float32)) * weight[..., None]
    num = cv2.GaussianBlur(diff, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
    den = cv2.GaussianBlur(weight, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
    correction = num / np.maximum(den, 1e-3)[..., None]
    # spread the correction inward where the band's blur does not reach (normalised, so it is the band's value)
    reach = depth / 100.0 * size
    wide = max(sigma, reach / 2.0)
    known = (den > 0.05).astype(np.float32)
    num2 = cv2.GaussianBlur(correction * known[..., None], (0, 0), wide, borderType=cv2.BORDER_CONSTANT)
    den2 = cv2.GaussianBlur(known, (0, 0), wide, borderType=cv2.BORDER_CONSTANT)
    correction = np.where(known[..., None] > 0, correction, num2 / np.maximum(den2, 1e-3)[..., None])
    # full strength on and outside the edge, smoothstep down to 0 at `reach` px inside it
    inside = cv2.distanceTransform(core, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    t = np.clip(1.0 - inside / max(reach, 1e-3), 0.0, 1.0)
    fade = t * t * (3.0 - 2.0 * t)
    return (correction * fade[..., None]).astype(np.float32)


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
