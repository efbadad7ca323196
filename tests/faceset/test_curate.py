"""Sorting and filtering facesets by quality metrics, on real GRID faces."""

import shutil

import cv2
import numpy as np
import pytest

from facedouble.cli import main
from facedouble.errors import FacedoubleError, InputError
from facedouble.faceset import Faceset, read_face, write_face
from facedouble.faceset.curate import faceset_stats, move_to_rejects, restore_rejects, score_faceset, sort_faceset
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


def test_move_to_rejects_and_restore_round_trip(faceset):
    names = [p.name for p in Faceset(faceset).paths()[:2]]
    data = {n: (faceset / n).read_bytes() for n in names}
    moved = move_to_rejects(faceset, names, "manual")
    assert moved == [faceset / REJECTS_DIR / "manual" / n for n in names]
    assert all(p.is_file() for p in moved) and not any((faceset / n).exists() for n in names)
    assert restore_rejects(faceset, names[:1]) == [faceset / names[0]]  # found without naming the reason
    assert restore_rejects(faceset, names[1:], reason="manual") == [faceset / names[1]]
    assert {n: (faceset / n).read_bytes() for n in names} == data
    assert not any((faceset / REJECTS_DIR / "manual").iterdir())


@pytest.mark.parametrize("name", ["../x.png", "sub/x.png", "sub\\x.png", "..", "", ".hidden.png", "x.txt",
                                  f"{REJECTS_DIR}/blur/x.png"])
def test_reject_names_must_be_plain_face_files(faceset, name):
    first = Faceset(faceset).paths()[0].name
    with pytest.raises(InputError, match="plain face file name"):
        move_to_rejects(faceset, [first, name], "manual")
    assert (faceset / first).is_file()  # checked before anything moved
    with pytest.raises(InputError, match="plain face file name"):
        restore_rejects(faceset, [name])


@pytest.mark.parametrize("reason", ["", "..", "a/b", "Blur", "-x", "x" * 65])
def test_reject_reason_must_be_a_slug(faceset, reason):
    with pytest.raises(InputError, match="slug"):
        move_to_rejects(faceset, [Faceset(faceset).paths()[0].name], reason)


def test_moves_never_overwrite(faceset):
    a, b = (p.name for p in Faceset(faceset).paths()[:2])
    move_to_rejects(faceset, [a], "blur")
    shutil.copy(faceset / b, faceset / a)  # a new face with the name of the rejected one
    with pytest.raises(FacedoubleError, match="refusing to overwrite"):
        move_to_rejects(faceset, [b, a], "blur")
    with pytest.raises(FacedoubleError, match="refusing to overwrite"):
        restore_rejects(faceset, [a])
    assert (faceset / a).is_file() and (faceset / b).is_file()  # nothing moved
    with pytest.raises(FacedoubleError, match="refusing to overwrite"):
        move_to_rejects(faceset, [b, b], "yaw")
    (faceset / a).unlink()
    move_to_rejects(faceset, [b], "yaw")
    shutil.copy(faceset / REJECTS_DIR / "yaw" / b, faceset / REJECTS_DIR / "blur" / b)
    with pytest.raises(InputError, match="several reasons"):
        restore_rejects(faceset, [b])
    with pytest.raises(InputError, match="no rejected face"):
        restore_rejects(faceset, [a], reason="yaw")
    with pytest.raises(InputError, match="plain reject folder"):
        restore_rejects(faceset, [a], reason="../blur")
