"""`facedouble mask label import|export` on a real GRID faceset."""

import json
import shutil

import pytest

from facedouble.cli import main
from facedouble.faceset import Faceset
from facedouble.mask import read_labels

TRI = [[[4, 4], [50, 4], [30, 50]]]


@pytest.fixture()
def faceset(tmp_path, grid_faceset):
    out = tmp_path / "fs"
    shutil.copytree(grid_faceset("bbaf2n", embed_every=5), out)
    return out


def _write(path, faces):
    path.write_text(json.dumps({"format": "facedouble.labels", "faces": faces}))
    return str(path)


def test_import_then_export_round_trips(tmp_path, faceset):
    names = [p.name for p in Faceset(faceset).paths()[:2]]
    src = _write(tmp_path / "in.json", {names[0]: {"include": TRI, "exclude": []}, names[1]: {"include": TRI}})
    assert main(["mask", "label", "import", str(faceset), src]) == 0
    assert read_labels(faceset / names[0]).include[0].tolist() == TRI[0]
    out = tmp_path / "out.json"
    assert main(["mask", "label", "export", str(faceset), str(out)]) == 0
    faces = json.loads(out.read_text())["faces"]
    assert sorted(faces) == sorted(names) and faces[names[1]] == {"include": TRI, "exclude": []}
    assert main(["mask", "label", "import", str(faceset), _write(tmp_path / "clr.json", {names[0]: None})]) == 0
    assert read_labels(faceset / names[0]) is None


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ('{"faces": {}}', "not a label file"),
    ('{"format": "facedouble.labels", "faces": {"nobody.png": null}}', "unknown face"),
    (None, "polygon 0"),
])
def test_bad_files_fail_in_one_line_and_write_nothing(tmp_path, faceset, capsys, content, message):
    paths = Faceset(faceset).paths()
    before = [p.read_bytes() for p in paths]
    src = tmp_path / "bad.json"
    if content is None:  # first face fine, second broken: nothing may be written
        _write(src, {paths[0].name: {"include": TRI}, paths[1].name: {"include": [[[0, 0]]]}})
    else:
        src.write_text(content)
    assert main(["mask", "label", "import", str(faceset), str(src)]) == 3
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert [p.read_bytes() for p in paths] == before
