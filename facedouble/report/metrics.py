"""Per-frame quality metrics of a rendered face against the target face of the same frame.

- pose error: L2 norm of the (yaw, pitch, roll) difference in degrees (faceset.pose.head_pose);
- expression error: mouth (points 48-67) and eye (36-47) landmark distance after a similarity fit on
  the rigid points (nose 27-35, eye corners, jaw ends), divided by the inter-ocular distance;
- residual flicker: the frame-to-frame change of (render - target) inside the face region over the
  target's own frame-to-frame change there; 0 = the render moves exactly as the plate does. A frozen face
  (first frame repeated) scores ~1 (the whole motion is missing), a jittering face more; a constant
  colour or identity difference costs nothing, only its change over time does. Both clips are
  Gaussian-smoothed (sigma 1.5 px) first, so the plate's grain, which no render reproduces, is no flicker;
- face stability ratio (the report's old "flicker"): the render's own frame-to-frame change over the
  target's. It cannot tell stable from dead: a frozen face scores 0, "more stable than the original";
- gaze error: the distance between the iris centres (mesh points 468 and 473, MediaPipe's refined iris)
  of render and target, in the target's eye widths (corner 33-133 / 362-263), mean of both eyes, after
  a similarity fit of the render's mesh onto the target's on the face oval and nose: 0.1 = the iris sits a
  tenth of an eye width from where the performer's is. Not measured in each mesh's own eye-corner frame:
  MediaPipe's eye corners follow the iris (on GRID's 20 px eyes a 3 px iris shift drags them ~1 px), which
  hid up to half the error;
- seam score: gradient energy across the merge mask's edge, render over target, in a thin band around
  the edge (the gradient's component along the edge normal); 1.0 = the edge is as smooth as the plate
  there, a hard paste scores well above 1. The report is given no mask, so it finds the edge where the
  swap stops changing the plate (`swap_region`): whatever mask, erosion or blur the merge used, the band
  lies where that render's face meets the plate, not on a fixed face outline;
- seam step: the shading step at that edge, in CIE L* units (about 2 is just visible side by side): the
  render-minus-plate lightness difference, low-passed over the band's width inside the swap (so texture and
  sharpness, which the seam score sees, do not count) and averaged in absolute value over the band's inner
  half. A blurry render scores a seam score below 1 even with a visible step (smoother than the plate there);
  the step sees it;
- SSIM of the face region (Gaussian window, sigma 1.5, grey levels);
- occluders left untouched: of the pixels of the target's face that something covers (a hand the hand
  detector finds over the face oval, or the exclude polygons of labelled faces), the share where the
  render stays within OCCLUDER_TOL levels of the plate (every channel), i.e. above H.264 codec noise:
  1.0 = the swap left every hand pixel alone, 0 = it painted the face over them.
"""

from __future__ import annotations

import cv2
import numpy as np

from facedouble.face.align import inter_ocular, umeyama
from facedouble.face.mesh import FACE_OVAL
from facedouble.faceset.pose import head_pose

RIGID = np.array([0, 16, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 39, 42, 45])
MOUTH = slice(48, 68)
EYES = slice(36, 48)
# (iris centre, eye corner a, eye corner b) of the 478-point MediaPipe mesh, one row per eye.
IRIS_EYES = ((468, 33, 133), (473, 362, 263))
# Mesh points that do not move with the eyes: the face oval and the nose ridge.
GAZE_RIGID = np.array([*FACE_OVAL, 1, 4, 5, 6, 168, 195, 197])
GRAIN_SIGMA = 1.5  # px; residual flicker is measured above grain (see residual_change)
SSIM_REACH = 5  # px: half the 11x11 Gaussian window of ssim_region
OCCLUDER_TOL = 8  # levels: a render within this of the plate left the pixel alone (codec noise stays below)
SWAP_LEVELS = 6.0  # levels of smoothed render-plate difference that count as swapped (codec noise stays below)
SWAP_REACH = 0.25  # the swapped region is looked for this share of the face's size beyond its outline
SWAP_MIN_SHARE = 0.25  # a swapped region smaller than this share of the face outline: fall back to the outline


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
    y0, y1, x0, x1 = _box(region, 0)
    inside = region[y0:y1, x0:x1]
    return float(np.abs(a[y0:y1, x0:x1].astype(np.int16) - b[y0:y1, x0:x1].astype(np.int16))[inside].mean())


def _box(mask: np.ndarray, pad: int) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of the bounding box of a non-empty boolean mask grown by `pad`, clipped to the frame.

    The metrics work on this box, not the whole frame, so a 4K frame costs no full-frame float copies: with
    `pad` at least the filters' reach, every pixel they read inside the box is the one the full frame has
    (at the frame's own edges the box ends there too, so the border rule is the same)."""
    ys = np.flatnonzero(mask.any(1))
    xs = np.flatnonzero(mask.any(0))
    h, w = mask.shape[:2]
    return max(0, ys[0] - pad), min(h, ys[-1] + pad + 1), max(0, xs[0] - pad), min(w, xs[-1] + pad + 1)


def ssim_region(a: np.ndarray, b: np.ndarray, region: np.ndarray) -> float:
    """Mean SSIM of two RGB frames over `region` (grey levels, Gaussian window sigma 1.5)."""
    if not region.any():
        return float("nan")
    y0, y1, x0, x1 = _box(region, SSIM_REACH)
    region = region[y0:y1, x0:x1]
    x = cv2.cvtColor(np.ascontiguousarray(a[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY).astype(np.float64)
    y = cv2.cvtColor(np.ascontiguousarray(b[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY).astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(img: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(img, (11, 11), 1.5)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    ssim = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(ssim[region].mean()) if region.any() else float("nan")


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) if image.ndim == 3 else image.astype(np.float32)


def residual_change(render: np.ndarray, target: np.ndarray, prev_render: np.ndarray, prev_target: np.ndarray,
                    region: np.ndarray) -> tuple[float, float]:
    """(residual change, target change) between two frames inside `region`, mean absolute RGB (0-255).

    Residual change = |(render_t - target_t) - (render_t-1 - target_t-1)|; residual flicker is its sum over
    the clip divided by the target change's sum (see the module doc).
    """
    if not region.any():
        return 0.0, 0.0
    ys, xs = np.nonzero(region)
    pad = int(3 * GRAIN_SIGMA) + 1
    y0, y1 = max(0, ys.min() - pad), ys.max() + pad + 1
    x0, x1 = max(0, xs.min() - pad), xs.max() + pad + 1
    inside = region[y0:y1, x0:x1]

    def smooth(image: np.ndarray) -> np.ndarray:
        # Grain and compression noise change every frame and no model reproduces them; a render that
        # drops them has not flickered, so both clips are compared at face scale, not pixel scale.
        return cv2.GaussianBlur(image[y0:y1, x0:x1].astype(np.float32), (0, 0), GRAIN_SIGMA)[inside]

    r, t, pr, pt = smooth(render), smooth(target), smooth(prev_render), smooth(prev_target)
    return float(np.abs((r - t) - (pr - pt)).mean()), float(np.abs(t - pt).mean())


def gaze_error(render_mesh: np.ndarray, target_mesh: np.ndarray) -> float:
    """Mean distance of the iris centres of render and target, in the target's eye widths (see module doc).

    The render's mesh is first fitted onto the target's by a similarity on points that do not follow the
    eyes (face oval, nose), so head position, size and roll cancel and only the iris's offset is left.
    """
    if len(render_mesh) < 478 or len(target_mesh) < 478:
        return float("nan")  # a mesh without the refined iris points
    mat = umeyama(render_mesh[GAZE_RIGID, :2], target_mesh[GAZE_RIGID, :2])
    aligned = render_mesh[:, :2] @ mat[:, :2].T + mat[:, 2]
    errors = [np.linalg.norm(aligned[iris] - target_mesh[iris, :2])
              / max(float(np.linalg.norm(target_mesh[b, :2] - target_mesh[a, :2])), 1e-6)
              for iris, a, b in IRIS_EYES]
    return float(np.mean(errors))


def seam_band(mask: np.ndarray, width: int) -> np.ndarray:
    """Boolean band of `width` px either side of the edge of a boolean mask."""
    m = mask.astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    return (cv2.dilate(m, kernel) > 0) & ~(cv2.erode(m, kernel) > 0)


def edge_energy(image: np.ndarray, mask: np.ndarray, width: int) -> float:
    """Gradient energy across the edge of `mask`: mean squared grey-level gradient along the edge normal, in
    its seam band (squared, so one hard step counts more than the same change spread over a feather)."""
    if not mask.any():
        return float("nan")
    # the box reaches past the band (width) by the mask blur's kernel (4 sigma) and both Sobels (1 px each)
    y0, y1, x0, x1 = _box(mask, width + 4 * max(1, width) + 4)
    mask, image = mask[y0:y1, x0:x1], np.ascontiguousarray(image[y0:y1, x0:x1])
    band = seam_band(mask, width)
    if not band.any():
        return float("nan")
    # The edge normal: the gradient of the blurred mask, unit length (the band is where it is defined).
    soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), max(1.0, width))
    nx, ny = cv2.Sobel(soft, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(soft, cv2.CV_32F, 0, 1, ksize=3)
    norm = np.maximum(np.hypot(nx, ny), 1e-6)
    grey = _grey(image)
    gx, gy = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    across = (gx * nx + gy * ny) / norm
    return float(np.square(across[band]).mean())


def swap_region(render: np.ndarray, target: np.ndarray, face: np.ndarray, width: int) -> np.ndarray:
    """Boolean mask of where the render replaced the plate within one face's outline `face`: the edge the seam
    score and step follow.

    The per-pixel difference (largest channel) is smoothed over the seam band's width, so codec noise, the
    plate's grain and the watermark fall below SWAP_LEVELS while the swapped face stays above it up to where
    the merge mask fades it out; only the part within SWAP_REACH of the outline counts (other faces, other
    changes), its largest connected piece is kept and its holes are filled (a swapped cheek that happens to
    match the plate is still inside), and it is clipped to the outline: where the swap ends inside the face (a
    hull mask's top edge on the brows, an eroded mask) the edge is the swap's, elsewhere the outline's. A
    thresholded difference alone puts the edge where the difference is still large, inward of a well matched
    edge (bench.seam: this edge overlaps merge's own mask edge at IoU 0.88-0.91, the outline alone 0.77, the
    difference alone 0.85). Falls back to `face` when almost nothing changed (the swap equals the plate, or the
    face was not swapped): then there is no edge of the swap to measure.
    """
    if not face.any():
        return face
    y0, y1, x0, x1 = _box(face, 0)
    reach = max(1, round(SWAP_REACH * max(y1 - y0, x1 - x0)))
    y0, y1, x0, x1 = _box(face, reach + 3 * max(1, width))
    near = cv2.dilate(face[y0:y1, x0:x1].astype(np.uint8),
                      cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))) > 0
    diff = np.abs(render[y0:y1, x0:x1].astype(np.int16) - target[y0:y1, x0:x1].astype(np.int16))
    diff = diff.max(axis=2).astype(np.float32) if diff.ndim == 3 else diff.astype(np.float32)
    changed = ((cv2.GaussianBlur(diff, (0, 0), max(1.0, width / 2)) > SWAP_LEVELS) & near).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(changed, connectivity=8)
    if count < 2:
        return face
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    piece = (labels == largest).astype(np.uint8)
    contours, _ = cv2.findContours(piece, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(piece, contours, -1, 1, thickness=cv2.FILLED)
    if piece.sum() < SWAP_MIN_SHARE * face.sum():
        return face
    out = np.zeros(face.shape, bool)
    out[y0:y1, x0:x1] = piece > 0
    return out & face


def seam_score(render: np.ndarray, target: np.ndarray, mask: np.ndarray, width: int = 3) -> float:
    """Gradient energy across the mask's edge, render over target (1.0 = as smooth as the plate)."""
    r, t = edge_energy(render, mask, width), edge_energy(target, mask, width)
    if not (np.isfinite(r) and np.isfinite(t)):
        return float("nan")
    return r / max(t, 1e-6)


def seam_step(render: np.ndarray, target: np.ndarray, mask: np.ndarray, width: int = 3) -> float:
    """Mean absolute low-passed L* difference render - plate in the inner half of the seam band of `mask`."""
    if not mask.any():
        return float("nan")
    y0, y1, x0, x1 = _box(mask, 2 * width + 4 * max(1, width) + 4)
    mask = mask[y0:y1, x0:x1]
    inner = seam_band(mask, width) & mask
    if not inner.any():
        return float("nan")
    diff = lightness(render[y0:y1, x0:x1]) - lightness(target[y0:y1, x0:x1])
    # low-passed inside the mask only (normalised convolution): the plate outside, where the difference is 0 by
    # definition, would otherwise halve the step right at the edge
    sigma, inside = max(1.0, float(width)), mask.astype(np.float32)
    smooth = cv2.GaussianBlur(diff * inside, (0, 0), sigma) / np.maximum(cv2.GaussianBlur(inside, (0, 0), sigma), 1e-3)
    return float(np.abs(smooth[inner]).mean())


def lightness(image: np.ndarray) -> np.ndarray:
    """CIE L* (0-100) of an RGB uint8 image, float32 (OpenCV Lab; L* is its first channel scaled to 0-100)."""
    return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2Lab)[..., 0].astype(np.float32) * (100.0 / 255.0)


def seam_width(landmarks: np.ndarray) -> int:
    """Seam band half-width for a face: 6 % of the inter-ocular distance, at least 2 px."""
    return max(2, round(0.06 * inter_ocular(landmarks)))


def occluder_untouched(render: np.ndarray, target: np.ndarray, occluder: np.ndarray,
                       tol: int = OCCLUDER_TOL) -> tuple[int, int]:
    """(pixels the render left within `tol` levels of the plate in every channel, pixels) of boolean `occluder`."""
    n = int(occluder.sum())
    if n == 0:
        return 0, 0
    diff = np.abs(render[occluder].astype(np.int16) - target[occluder].astype(np.int16))
    return int((diff.reshape(n, -1).max(1) <= tol).sum()), n
