"""Face metadata: exact round trip, validation of tampered or hostile files."""

import json

import numpy as np
import pytest

from facedouble.errors import InputError
from facedouble.faceset import Faceset, read_face, read_meta, write_face
from facedouble.faceset.meta import META_KEY, FaceMeta
from facedouble.io import imagemeta


@pytest.fixture(scope="module")
def face(grid_faceset):
    folder = grid_faceset("bbaf2n", embed_every=5)
    path = next(p for p, m in Faceset(folder).metas() if m.embedding is not None)
    return read_face(path)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_metadata_round_trips_exactly(tmp_path, face, suffix):
    image, meta = face
    path = tmp_path / f"face{suffix}"
    write_face(path, image, meta)
    back = read_meta(path)
    for field in meta.__dataclass_fields__:
        a, b = getattr(meta, field), getattr(back, field)
        if isinstance(a, np.ndarray):
            assert np.array_equal(a, b), field
        else:
            assert a == b, field
    pixels, _ = read_face(path)
    assert pixels.shape == image.shape
    if suffix == ".png":
        assert np.array_equal(pixels, image)  # lossless


def _tamper(path, edit):
    data = path.read_bytes()
    raw = json.loads(imagemeta.get_text(data, META_KEY))
    edit(raw)
    path.write_bytes(imagemeta.set_text(data, META_KEY, json.dumps(raw)))


@pytest.mark.parametrize("edit, message", [
    (lambda r: r.update(transform=[[1, 0], [0, 1]]), "shape"),
    (lambda r: r.update(version=99), "version"),
    (lambda r: r.update(face_type="everything"), "face type"),
    (lambda r: r.update(__reduce__="os.system"), "unknown field"),
    (lambda r: r.pop("landmarks"), "lacks"),
    (lambda r: r.update(score="high"), "score"),
])
def test_tampered_metadata_is_rejected_with_a_clear_error(tmp_path, face, edit, message):
    image, meta = face
    path = tmp_path / "face.png"
    write_face(path, image, meta)
    _tamper(path, edit)
    with pytest.raises(InputError, match=message) as err:
        read_meta(path)
    assert str(path) in str(err.value)


def test_not_json_and_foreign_images_are_rejected(tmp_path, face):
    image, meta = face
    path = tmp_path / "face.png"
    write_face(path, image, meta)
    path.write_bytes(imagemeta.set_text(path.read_bytes(), META_KEY, "{not json"))
    with pytest.raises(InputError, match="not valid JSON"):
        read_meta(path)
    path.write_bytes(imagemeta.remove_text(path.read_bytes(), META_KEY))
    with pytest.raises(InputError, match="no facedouble metadata"):
        read_meta(path)


def test_deleting_a_file_removes_the_face(tmp_path, face):
    image, meta = face
    for i in range(3):
        write_face(tmp_path / f"f{i}.png", image, meta)
    fs = Faceset(tmp_path)
    assert len(fs) == 3
    (tmp_path / "f1.png").unlink()
    assert [p.name for p in fs.paths()] == ["f0.png", "f2.png"]


def test_json_is_not_pickle_and_has_no_nan(face):
    _, meta = face
    text = meta.to_json()
    assert json.loads(text)["version"] == 2
    bad = FaceMeta.from_json(text)
    bad.score = float("nan")
    with pytest.raises(ValueError):
        bad.to_json()


def test_v1_files_still_read_and_v1_cannot_carry_labels(tmp_path, face):
    image, meta = face
    path = tmp_path / "face.png"
    write_face(path, image, meta)
    _tamper(path, lambda r: (r.update(version=1), r.pop("labels")))
    assert read_meta(path).labels is None
    _tamper(path, lambda r: r.update(labels={"include": [[[0, 0], [10, 0], [0, 10]]], "exclude": []}))
    with pytest.raises(InputError, match="v1 cannot carry labels"):
        read_meta(path)


def test_files_with_the_retired_identity_field_still_read(tmp_path, face):
    """Faces written before FaceMeta.identity was removed carry "identity": null; they read unchanged."""
    image, meta = face
    path = tmp_path / "face.png"
    write_face(path, image, meta)
    assert "identity" not in json.loads(meta.to_json())
    _tamper(path, lambda r: r.update(identity=None))
    assert read_meta(path).frame_index == meta.frame_index


@pytest.mark.parametrize("labels, message", [
    ({"include": [[[0, 0], [1, 1]]]}, "3..512"),
    ({"include": [[[0, 0], [1, 1], [1e9, 0]]]}, "outside"),
    ({"include": [[[0, 0], [1, 1], ["x", 0]]]}, "finite"),
    ({"include": [[[0, 0], [1, 0], [0, 1]]] * 65}, "at most 64"),
    ({"include": [], "paint": []}, "unknown field"),
])
def test_hostile_labels_are_rejected(tmp_path, face, labels, message):
    image, meta = face
    path = tmp_path / "face.png"
    write_face(path, image, meta)
    _tamper(path, lambda r: r.update(labels=labels))
    with pytest.raises(InputError, match=message):
        read_meta(path)
