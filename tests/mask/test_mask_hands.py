"""Hands as occluders: a hand at the mouth (intel/bird.mkv) is cut out of the mask; GRID faces lose nothing."""

import time
from pathlib import Path

import numpy as np
import pytest

from facedouble.errors import FacedoubleError
from facedouble.faceset import Faceset
from facedouble.io.video import open_source
from facedouble.mask.hands import hands_mask, hands_near_face
from facedouble.merge.masks import MASK_MODES, build_mask, hands_for_mode, uses_hands

BIRD = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "intel" / "bird.mkv"


def _faces_with_frames(clip, folder, limit=None):
    metas = {m.frame_index: m for _, m in Faceset(folder).metas()}
    out = []
    for frame in open_source(clip):
        if frame.index in metas:
            out.append((frame.image, metas[frame.index]))
            if limit and len(out) >= limit:
                break
    return out


@pytest.fixture(scope="module")
def bird_faceset(tmp_path_factory):
    """Every 10th frame of intel/bird.mkv (the signer's hand passes over the mouth in frames 30-40)."""
    if not BIRD.exists():
        pytest.skip("intel/bird.mkv not available")
    from facedouble.extract.pipeline import ExtractConfig, extract

    out = tmp_path_factory.mktemp("bird")
    extract(BIRD, out, ExtractConfig(size=64, every_nth=10, embed_every=1000, progress=False))
    return out


@pytest.fixture(scope="module")
def bird_faces(bird_faceset):
    return _faces_with_frames(BIRD, bird_faceset)


def test_hand_at_the_mouth_is_found_and_cut_out(bird_faces):
    found = covered = 0
    for image, meta in bird_faces:
        hands = hands_near_face(image, meta.transform, meta.size)
        if not hands:
            continue
        found += 1
        assert any(np.linalg.norm(h.mean(0) - meta.aligned_landmarks[48:68].mean(0)) < meta.size for h in hands)
        hm = hands_mask(image, meta.transform, meta.size)
        full = build_mask("hull", meta.size, meta.aligned_landmarks, None, None)
        cut = build_mask("hull*-hands", meta.size, meta.aligned_landmarks, None, None, hm)
        covered += cut.sum() < 0.9 * full.sum()  # a real share of the face is hand
        assert np.all(cut <= full + 1e-6) and np.all(cut[hm >= 1] == 0)
    assert found >= 2 and covered >= 2  # frames 30 and 40 have the hand over the mouth


def test_grid_faces_lose_nothing_and_cost_is_measured(grid_faceset, grid_clip):
    faces = _faces_with_frames(grid_clip("bbaf2n"), grid_faceset("bbaf2n", embed_every=5), limit=3)
    hands_mask(*faces[0][0:1], faces[0][1].transform, faces[0][1].size)  # warm the graph
    start = time.perf_counter()
    for image, meta in faces:
        hm = hands_for_mode("mesh*-hands", image, meta.transform, meta.size)
        assert hm is not None and hm.sum() == 0
        plain = build_mask("mesh", meta.size, meta.aligned_landmarks, None, None)
        assert np.array_equal(build_mask("mesh*-hands", meta.size, meta.aligned_landmarks, None, None, hm), plain)
    ms = (time.perf_counter() - start) / len(faces) * 1000
    print(f"hand mask: {ms:.0f} ms per face")


def test_modes_and_missing_hand_mask():
    assert {"hull*-hands", "mesh*-hands", "hull*learned*-hands"} <= set(MASK_MODES)
    assert uses_hands("hull*-hands") and not uses_hands("hull*learned")
    assert hands_for_mode("hull", np.zeros((8, 8, 3), np.uint8), np.eye(2, 3), 64) is None
    with pytest.raises(FacedoubleError, match="no hand mask"):
        build_mask("hull*-hands", 64, np.random.default_rng(0).uniform(10, 50, (68, 2)), None, None)


def test_merge_with_hands_mode_cuts_the_hand_out_of_the_matte(bird_faceset, tmp_path):
    import cv2

    from facedouble.merge.pipeline import MergeConfig, Outputs
    from tests.standin import ShiftSwapper
    from tests.standin import merge_unmarked as merge

    sums = {}
    for mode in ("hull", "hull*-hands"):
        out = Outputs(png_dir=tmp_path / mode / "png", matte_dir=tmp_path / mode / "matte")
        merge(ShiftSwapper(64, face_type="full"), bird_faceset, out,
              MergeConfig(mask=mode, colour="none", transform_smooth=0.0, batch=8, segment_frames=100), progress=False)
        sums[mode] = {p.name: float(cv2.imread(str(p), cv2.IMREAD_UNCHANGED).astype(np.float64).sum())
                      for p in sorted(out.matte_dir.iterdir())}
    assert sums["hull"].keys() == sums["hull*-hands"].keys()
    less = [k for k in sums["hull"] if sums["hull*-hands"][k] < 0.95 * sums["hull"][k]]
    assert len(less) >= 2 and all(sums["hull*-hands"][k] <= sums["hull"][k] + 1e-6 for k in sums["hull"])
