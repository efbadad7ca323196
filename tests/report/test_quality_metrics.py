"""Residual flicker, gaze error and seam score on constructed cases made from real GRID frames."""

import cv2
import numpy as np
import pytest

from facedouble.extract.landmarks import FaceMeshLandmarker
from facedouble.extract.pipeline import ExtractConfig, track_faces
from facedouble.io.video import open_source
from facedouble.report.metrics import (
    IRIS_EYES,
    face_region,
    frame_change,
    gaze_error,
    residual_change,
    seam_score,
    seam_step,
    seam_width,
    swap_region,
)

N = 8


@pytest.fixture(scope="module")
def shot(grid_clip):
    """The first N frames of a GRID clip with their tracked faces."""
    frames, faces = [], []
    for frame, found in track_faces(open_source(grid_clip("bbaf2n")), ExtractConfig(progress=False)):
        frames.append(frame.image)
        faces.append(found[0])
        if len(frames) == N:
            break
    return frames, faces, [face_region(f.shape, o.mesh, o.landmarks) for f, o in zip(frames, faces, strict=True)]


def residual_flicker(render, target, regions):
    """Clip residual flicker and the old render/target change ratio."""
    res = tc = rc = raw_tc = 0.0
    for t in range(1, len(target)):
        r, c = residual_change(render[t], target[t], render[t - 1], target[t - 1], regions[t])
        res, tc = res + r, tc + c
        rc += frame_change(render[t], render[t - 1], regions[t])
        raw_tc += frame_change(target[t], target[t - 1], regions[t])
    return res / tc, rc / raw_tc


def test_identical_clip_has_zero_residual_flicker_and_gaze_error(shot):
    frames, faces, regions = shot
    assert residual_flicker(frames, frames, regions) == (0.0, 1.0)
    assert gaze_error(faces[0].mesh, faces[0].mesh) == 0.0
    assert seam_score(frames[0], frames[0], regions[0]) == pytest.approx(1.0)


def test_frozen_and_jittering_faces_score_far_above_a_small_real_perturbation(shot):
    frames, _, regions = shot
    # A render that follows the plate but differs from it: blurred, a little brighter (as a model's output is).
    perturbed = [cv2.add(cv2.GaussianBlur(f, (0, 0), 1.0), 6) for f in frames]
    frozen = [frames[0]] * len(frames)
    jitter = [cv2.warpAffine(f, np.float32([[1, 0, (-1) ** i], [0, 1, 0]]), f.shape[1::-1],
                             borderMode=cv2.BORDER_REPLICATE) for i, f in enumerate(frames)]
    small, _ = residual_flicker(perturbed, frames, regions)
    dead, dead_stability = residual_flicker(frozen, frames, regions)
    shaky, _ = residual_flicker(jitter, frames, regions)
    assert dead == pytest.approx(1.0)  # the whole motion of the plate is missing
    assert dead > 3 * small and shaky > 3 * small
    assert dead_stability == 0.0  # the old ratio called the frozen face perfectly stable


def _shift_irises(image, mesh, shift):
    """Move the pixels around each iris `shift` px along x, inside the eye opening (corners untouched)."""
    out = image.copy()
    for iris, a, b in IRIS_EYES:
        x, y = np.round(mesh[iris]).astype(int)
        half = int(0.3 * np.linalg.norm(mesh[b] - mesh[a]))
        patch = image[y - 4:y + 5, x - half:x + half].copy()
        out[y - 4:y + 5, x - half + shift:x + half + shift] = patch
    return out


def test_shifted_iris_gives_the_known_gaze_error(shot):
    frames, faces, _ = shot
    landmarker = FaceMeshLandmarker()
    try:
        image, lm68 = frames[0], faces[0].landmarks
        before = landmarker.from_landmarks(image, lm68).mesh
        shift = 2
        after = landmarker.from_landmarks(_shift_irises(image, before, shift), lm68).mesh
    finally:
        landmarker.close()
    width = np.mean([np.linalg.norm(before[b] - before[a]) for _, a, b in IRIS_EYES])
    expected = shift / width
    # MediaPipe moves its iris point a little less than the pixels moved (~0.9 of a 2 px shift on GRID's eyes).
    assert gaze_error(after, before) == pytest.approx(expected, rel=0.25)
    assert gaze_error(after, before) > 5 * gaze_error(before, before)


def test_hard_edged_paste_scores_a_higher_seam_than_a_feathered_one(shot):
    frames, faces, regions = shot
    target, mask = frames[0], regions[0]
    face = cv2.add(target, 40)  # a swapped face a little brighter than the plate
    hard = np.where(mask[..., None], face, target)
    alpha = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 5.0)[..., None]
    feathered = np.round(alpha * face + (1 - alpha) * target).astype(np.uint8)
    width = seam_width(faces[0].landmarks)
    hard_score, soft_score = seam_score(hard, target, mask, width), seam_score(feathered, target, mask, width)
    assert hard_score > 1.5 * soft_score and hard_score > 2.0


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_seam_follows_the_swaps_own_edge_not_the_face_outline(shot):
    """A swap whose mask ends inside the face outline (an eroded hull, say): the report finds that edge, so a
    hard edge there scores high, while the outline's band, where render equals plate, would call it clean."""
    frames, faces, regions = shot
    target, outline = frames[0], regions[0]
    width = seam_width(faces[0].landmarks)
    inner = cv2.erode(outline.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (25, 25))) > 0
    face = cv2.add(target, 40)
    hard = np.where(inner[..., None], face, target)
    alpha = cv2.GaussianBlur(inner.astype(np.float32), (0, 0), 5.0)[..., None]
    feathered = np.round(alpha * face + (1 - alpha) * target).astype(np.uint8)
    # the render went through a codec: JPEG noise everywhere, inside the face and out
    ok, buf = cv2.imencode(".jpg", hard, [cv2.IMWRITE_JPEG_QUALITY, 85])
    coded = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    for render in (hard, coded):
        assert _iou(swap_region(render, target, outline, width), inner) > 0.85
    edge_hard = swap_region(hard, target, outline, width)
    edge_soft = swap_region(feathered, target, outline, width)
    hard_score = seam_score(hard, target, edge_hard, width)
    assert hard_score > 2.0 and hard_score > 1.5 * seam_score(feathered, target, edge_soft, width)
    assert seam_score(hard, target, outline, width) < 1.3  # what the outline alone would have reported


def test_swap_region_falls_back_to_the_outline_when_nothing_was_swapped(shot):
    frames, faces, regions = shot
    width = seam_width(faces[0].landmarks)
    assert (swap_region(frames[0], frames[0], regions[0], width) == regions[0]).all()
    other_face_only = frames[0].copy()
    other_face_only[:40, :40] = 255  # a change far from this face is not its swap
    assert (swap_region(other_face_only, frames[0], regions[0], width) == regions[0]).all()


def test_seam_step_sees_a_shading_step_that_a_blurry_render_hides_from_the_seam_score(shot):
    """A blurry swapped face is smoother than the plate at the edge, so a brighter one scores a seam score near
    1 (the blur cancels the step); the step in L* tells the two apart: it is the brightness the face adds."""
    frames, faces, regions = shot
    target, outline = frames[0], regions[0]
    width = seam_width(faces[0].landmarks)
    blurry = cv2.GaussianBlur(target, (0, 0), 3.0)
    alpha = cv2.GaussianBlur(outline.astype(np.float32), (0, 0), 2.0)[..., None]
    matched = np.round(alpha * blurry + (1 - alpha) * target).astype(np.uint8)
    brighter = np.round(alpha * cv2.add(blurry, 20) + (1 - alpha) * target).astype(np.uint8)
    edge = swap_region(brighter, target, outline, width)
    assert seam_score(brighter, target, edge, width) < 1.3  # the ratio alone hardly notices
    step, clean = seam_step(brighter, target, edge, width), seam_step(matched, target, outline, width)
    assert clean < 2.0 and step > 2.5 * clean and 3.0 < step < 8.0  # +20 levels is ~8 L* where the face is opaque
    assert seam_step(target, target, outline, width) == 0.0
