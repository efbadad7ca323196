"""Masks, smoothing, face-type retargeting and blending, on real GRID faces where faces are needed."""

from __future__ import annotations

import numpy as np
import pytest

from facedouble.face.align import template_in_output
from facedouble.merge.blend import composite, scale_about_centre
from facedouble.merge.masks import build_mask, hull_mask, mesh_mask, refine_mask
from facedouble.merge.plan import build_plan, retarget
from facedouble.merge.smooth import smooth_track


@pytest.fixture(scope="module")
def plan(target):
    return build_plan(target[0], 128, "full", smooth_sigma=1.0)


def test_mesh_oval_covers_the_forehead_and_hull_stops_at_the_brows(plan):
    job = plan.faces[20][0]
    hull = hull_mask(job.landmarks, 128) > 0.5
    oval = mesh_mask(job.mesh, 128) > 0.5
    brow_y = job.landmarks[17:27, 1].min()
    above = np.arange(128)[:, None] < brow_y - 3
    assert (oval & above).sum() > 200  # forehead
    assert (hull & above).sum() == 0
    assert (hull & ~oval).sum() < 0.05 * hull.sum()  # the oval contains the hull


def test_erode_dilate_and_feather_scale_with_face_size(plan):
    job = plan.faces[20][0]
    base = build_mask("hull", 128, job.landmarks, job.mesh, None)
    eroded, dilated = refine_mask(base, 5, 0), refine_mask(base, -5, 0)
    assert eroded.sum() < base.sum() < dilated.sum()
    feathered = refine_mask(base, 0, 8)
    soft = ((feathered > 0.02) & (feathered < 0.98)).sum()
    assert soft > ((base > 0.02) & (base < 0.98)).sum() * 3
    # relative units: the same settings at double resolution give the same covered fraction
    big = refine_mask(build_mask("hull", 256, job.landmarks * 2, None, None), 5, 8)
    assert big.mean() == pytest.approx(refine_mask(base, 5, 8).mean(), rel=0.06)
    product = build_mask("hull*learned", 128, job.landmarks, None, np.full((128, 128), 0.5, np.float32))
    assert np.allclose(product, base * 0.5)


def test_smoothing_removes_jitter_but_keeps_linear_motion():
    rng = np.random.default_rng(0)
    n = 60
    frames = list(range(n))
    moving = np.zeros((n, 2, 3))
    moving[:, 0, 0] = moving[:, 1, 1] = 2.0
    moving[:, 0, 2] = np.arange(n) * 3.0  # 3 px per frame pan
    smoothed = smooth_track(frames, moving, sigma=1.5)
    assert np.allclose(smoothed[5:-5], moving[5:-5])  # no lag on constant-speed motion
    jitter = moving.copy()
    jitter[:, :, 2] += rng.normal(0, 1.0, (n, 2))
    out = smooth_track(frames, jitter, sigma=1.5)
    assert np.abs(out - moving)[5:-5, :, 2].std() < 0.5 * np.abs(jitter - moving)[5:-5, :, 2].std()
    # a gap starts a new run: the two sides are not averaged together
    gap = smooth_track([0, 1, 2, 10, 11, 12], np.concatenate([moving[:3], moving[:3] + 100]), sigma=2)
    assert np.allclose(gap[3:], moving[:3] + 100, atol=2.0)


def test_retarget_maps_between_face_types():
    for a, b in (("full", "whole"), ("half", "head"), ("full", "full")):
        m = retarget(64, a, 128, b)
        pts = template_in_output(a, 64)
        mapped = pts @ m[:2, :2].T + m[:2, 2]
        assert np.allclose(mapped, template_in_output(b, 128), atol=1e-9)


def test_poisson_blend_and_scale_leave_outside_pixels_exact(plan, target_frames):
    frame = target_frames[20].copy()
    job = plan.faces[20][0]
    alpha = refine_mask(build_mask("mesh", 128, job.landmarks, job.mesh, None), 0, 5)
    face = np.clip(np.full((128, 128, 3), 0.3, np.float32) + np.linspace(0, 0.4, 128)[None, :, None], 0, 1)
    for mode in ("alpha", "poisson"):
        out = frame.copy()
        acc = np.zeros(frame.shape[:2], np.float32)
        box = composite(out, face, alpha, scale_about_centre(job.to_frame, 128, 1.1), mode, acc)
        assert box is not None
        assert np.array_equal(out[acc == 0], frame[acc == 0])
        assert np.abs(out[acc > 0.99].astype(int) - frame[acc > 0.99]).mean() > 3
    # scale > 1 enlarges the pasted area
    small = np.zeros(frame.shape[:2], np.float32)
    composite(frame.copy(), face, alpha, job.to_frame, "alpha", small)
    assert (acc > 0.5).sum() > 1.1 * (small > 0.5).sum()
