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
    seam_width,
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
