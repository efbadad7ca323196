"""Hand-drawn mask labels stored in real GRID face images: round trip, masks, survival of sort moves."""

import shutil

import numpy as np
import pytest

from facedouble.errors import InputError
from facedouble.faceset import Faceset, read_face
from facedouble.faceset.curate import sort_faceset
from facedouble.faceset.store import REJECTS_DIR
from facedouble.mask import FaceLabels, label_mask, read_labels, write_labels

SQUARE = np.array([[8, 8], [40, 8], [40, 40], [8, 40]], float)
HOLE = np.array([[16, 16], [24, 16], [24, 24], [16, 24]], float)


@pytest.fixture()
def faceset(tmp_path, grid_faceset):
    out = tmp_path / "fs"
    shutil.copytree(grid_faceset("bbaf2n", embed_every=5), out)
    return out


def test_label_mask_fills_include_and_cuts_exclude():
    mask = label_mask(FaceLabels(include=[SQUARE], exclude=[HOLE]), 64)
    assert mask.dtype == np.float32 and mask.shape == (64, 64)
    assert mask[30, 30] == 1 and mask[20, 20] == 0 and mask[50, 50] == 0
    assert abs(mask.sum() - (32 * 32 - 8 * 8)) < 80  # edges within a pixel
    assert label_mask(FaceLabels(include=[], exclude=[]), 64).sum() == 0


def test_labels_round_trip_keep_pixels_and_metadata(faceset):
    path = Faceset(faceset).paths()[0]
    before_pixels, before = read_face(path)
    assert read_labels(path) is None
    labels = FaceLabels(include=[SQUARE + 0.25], exclude=[HOLE])
    write_labels(path, labels)
    back = read_labels(path)
    assert np.array_equal(back.include[0], SQUARE + 0.25) and np.array_equal(back.exclude[0], HOLE)
    pixels, after = read_face(path)
    assert np.array_equal(pixels, before_pixels)
    assert np.array_equal(after.transform, before.transform) and after.embedding is not None or \
        before.embedding is None
    assert FaceLabels.from_json(labels.to_json()).to_dict() == labels.to_dict()
    write_labels(path, None)
    assert read_labels(path) is None


def test_out_of_image_labels_are_refused_before_writing(faceset):
    path = Faceset(faceset).paths()[0]
    data = path.read_bytes()
    with pytest.raises(InputError, match="outside"):
        write_labels(path, FaceLabels(include=[SQUARE * 100], exclude=[]))
    assert path.read_bytes() == data


def test_labels_survive_sort_moves(faceset):
    paths = Faceset(faceset).paths()
    for p in paths:
        write_labels(p, FaceLabels(include=[SQUARE], exclude=[]))
    result = sort_faceset(faceset, "blur", reject_worst=20.0, progress=False)
    moved = list((faceset / REJECTS_DIR / "blur").iterdir())
    assert moved and result is not None
    for p in moved + Faceset(faceset).paths():
        assert np.array_equal(read_labels(p).include[0], SQUARE)


def test_total_points_are_bounded():
    poly = np.random.default_rng(0).uniform(0, 64, (512, 2)).tolist()
    with pytest.raises(InputError, match="in all"):
        FaceLabels.from_dict({"include": [poly] * 33, "exclude": []}, size=64)
