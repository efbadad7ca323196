"""Sampler: determinism (the basis of exact resume), augmentation geometry, masks from landmarks."""

from __future__ import annotations

import numpy as np
import pytest

from facedouble.errors import FacedoubleError
from facedouble.face.warp import random_warp_maps
from facedouble.train.data import AugmentConfig, BatchSource, FaceBank, landmark_masks


@pytest.fixture(scope="module")
def banks(face_dirs):
    return FaceBank(face_dirs[0], 64, "full"), FaceBank(face_dirs[1], 64, "full")


def test_batches_are_a_pure_function_of_seed_rank_iteration(banks) -> None:
    src, dst = banks
    a = BatchSource(src, dst, 4, AugmentConfig(color_aug=0.5), seed=3, workers=2)
    b = BatchSource(src, dst, 4, AugmentConfig(color_aug=0.5), seed=3, workers=0)
    try:
        got = [a.get(i) for i in (5, 6, 7)]  # threaded, prefetching
        for i, batch in zip((5, 6, 7), got, strict=True):
            want = b.get(i)
            assert all(np.array_equal(batch[k], want[k]) for k in want)
        assert not np.array_equal(got[0]["src_warped"], got[1]["src_warped"])
        other_rank = BatchSource(src, dst, 4, AugmentConfig(), seed=3, rank=1, world=2, workers=0).make(5)
        assert not np.array_equal(other_rank["src_target"], b.make(5)["src_target"])
    finally:
        a.close()


def test_batch_shapes_ranges(banks) -> None:
    batch = BatchSource(*banks, 3, AugmentConfig(), seed=0, workers=0).make(0)
    for side in ("src", "dst"):
        assert batch[f"{side}_warped"].shape == (3, 64, 64, 3)
        assert batch[f"{side}_mask"].shape == (3, 64, 64, 1)
        for k in ("warped", "target", "mask", "eyes_mouth"):
            v = batch[f"{side}_{k}"]
            assert v.dtype == np.float32 and v.min() >= 0 and v.max() <= 1


def test_without_augmentation_target_is_the_face(banks) -> None:
    src, dst = banks
    aug = AugmentConfig(random_warp=False, random_flip=False, rotation=0, scale=0, shift=0)
    batch = BatchSource(src, dst, 2, aug, seed=0, workers=0).make(0)
    faces = src.images.astype(np.float32) / 255
    for t, w in zip(batch["src_target"], batch["src_warped"], strict=True):
        assert np.abs(faces - t).reshape(len(faces), -1).max(1).min() < 1e-5  # an unchanged face
        assert np.array_equal(t, w)


def test_warp_distorts_input_but_not_target(banks) -> None:
    aug = AugmentConfig(random_flip=False, rotation=0, scale=0, shift=0)
    batch = BatchSource(*banks, 4, aug, seed=0, workers=0).make(1)
    diff = np.abs(batch["src_warped"] - batch["src_target"]).mean()
    assert diff > 0.01  # the warp moved pixels
    mapx, mapy = random_warp_maps(np.random.default_rng(0), 64)
    # smooth and bounded: DFL's warp moves points by a fraction of a cell, the border stays put
    assert np.abs(mapx[:, 0]).max() < 1 and np.abs(mapy[0, :]).max() < 1  # within DFL's half-pixel offset
    assert np.abs(np.diff(mapx, axis=1)).max() < 3


def test_masks_from_landmarks_cover_face_and_features(banks) -> None:
    src, _ = banks
    from facedouble.faceset import Faceset

    fs = Faceset(src.paths[0].parent)
    meta = fs.meta(src.paths[0])
    face, em = landmark_masks(meta.aligned_landmarks * 64 / meta.size, 64)
    lm = meta.aligned_landmarks * 64 / meta.size
    for x, y in (lm[36:42].mean(0), lm[42:48].mean(0), lm[48:60].mean(0)):
        assert em[int(y), int(x)] > 0.5 and face[int(y), int(x)] == 1
    assert 0.15 < face.mean() < 0.8 and em.sum() < face.sum() / 2
    assert face[0, 0] == 0


@pytest.mark.parametrize("mode", ["rct", "lct"])
def test_colour_transfer_moves_src_samples_toward_dst(banks, mode) -> None:
    """ct_mode uses the merge stage's colour transfers on src samples (toward a random dst face)."""
    from facedouble.train.data import make_side

    src, dst = banks
    shard = np.arange(len(src.images))
    plain = make_side(src, np.random.default_rng(0), 8, AugmentConfig(random_warp=False), shard)
    moved = make_side(src, np.random.default_rng(0), 8, AugmentConfig(random_warp=False, ct_mode=mode), shard, dst)
    dst_mean = (dst.images.astype(np.float32) / 255)[dst.masks[..., 0] > 127].mean(0) if dst.masks.ndim == 4 else \
        (dst.images.astype(np.float32) / 255)[dst.masks > 127].mean(0)

    def face_mean(batch):
        return batch["target"][batch["mask"][..., 0] > 0.5].mean(0)

    assert np.abs(face_mean(moved) - dst_mean).sum() < 0.5 * np.abs(face_mean(plain) - dst_mean).sum()


def test_face_type_mismatch_is_a_user_error(face_dirs) -> None:
    with pytest.raises(FacedoubleError, match="face type"):
        FaceBank(face_dirs[0], 64, "head")


def test_empty_faceset_is_a_user_error(tmp_path) -> None:
    with pytest.raises(FacedoubleError, match="no faces"):
        FaceBank(tmp_path, 64, "full")
