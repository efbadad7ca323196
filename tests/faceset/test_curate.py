"""Sorting and filtering facesets by quality metrics, on real GRID faces."""

import shutil

import cv2
import numpy as np
import pytest

from facedouble.cli import main
from facedouble.faceset import Faceset, read_face, write_face
from facedouble.faceset.curate import faceset_stats, score_faceset, sort_faceset
from facedouble.faceset.pose import head_pose
from facedouble.faceset.store import REJECTS_DIR


@pytest.fixture()
def faceset(tmp_path, grid_faceset):
    out = tmp_path / "fs"
    shutil.copytree(grid_faceset("bbaf2n", embed_every=5), out)
    return out


def test_blurred_faces_sort_last_and_are_moved_not_deleted(faceset):
    paths = Faceset(faceset).paths()
    for p in paths[:3]:
        image, meta = read_face(p)
        write_face(p, cv2.GaussianBlur(image, (0, 0), 2.0), meta)
    result = sort_faceset(faceset, "blur", reject_worst=4.0, progress=False)
    assert {p.name for p in result.rejected} == {p.name for p in paths[:3]}
    assert len(Faceset(faceset)) == len(paths) - 3
    assert sorted(x.name for x in (faceset / REJECTS_DIR / "blur").iterdir()) == sorted(p.name for p in paths[:3])


def test_identity_sort_puts_other_people_last(faceset, grid_faceset):
    other = grid_faceset("sbwe5n", embed_every=5)
    intruders = [p for p, m in Faceset(other).metas() if m.embedding is not None][:3]
    for p in intruders:
        shutil.copy(p, faceset / p.name)
    ranked = [p.name for p, v in score_faceset(faceset, "identity", progress=False) if not np.isnan(v)]
    assert set(ranked[-3:]) == {p.name for p in intruders}


def test_head_pose_follows_geometry(grid_faceset):
    _, meta = Faceset(grid_faceset("bbaf2n", embed_every=5)).metas()[0]
    yaw, pitch, roll = head_pose(meta.landmarks)
    assert abs(yaw) < 12 and abs(pitch) < 15 and abs(roll) < 8  # GRID speakers face the camera
    rot = cv2.getRotationMatrix2D((180, 144), -25, 1.0)  # 25 degrees clockwise in the image
    turned = meta.landmarks @ rot[:, :2].T + rot[:, 2]
    assert head_pose(turned)[2] == pytest.approx(roll + 25, abs=1.0)
    assert head_pose(turned)[0] == pytest.approx(yaw, abs=1.0)
    shifted = meta.landmarks.copy()
    shifted[30, 0] += 10  # nose tip toward image right: the head turned right
    assert head_pose(shifted)[0] > yaw + 10


def test_stats_and_cli(faceset, capsys):
    stats = faceset_stats(faceset)
    assert stats["faces"] == 75 and stats["tracks"] == 1 and stats["with_embedding"] >= 15
    assert stats["blur"]["min"] <= stats["blur"]["median"] <= stats["blur"]["max"]
    assert main(["faceset", "sort", str(faceset), "--by", "yaw", "--max", "0.0", "--dry-run"]) == 0
    assert "would move 75" in capsys.readouterr().out
    assert len(Faceset(faceset)) == 75
    with pytest.raises(SystemExit) as exit_info:  # argparse: unknown metric
        main(["faceset", "sort", str(faceset), "--by", "sharpness"])
    assert exit_info.value.code == 2
