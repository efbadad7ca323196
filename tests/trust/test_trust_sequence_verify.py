"""`facedouble verify` on an EXR sequence (a folder or one frame): signed sidecar record + watermark."""

from __future__ import annotations

import json
import shutil

import pytest

from facedouble.trust.verify import EXIT_MARKED, EXIT_NOT_MARKED, EXIT_PARTIAL, EXIT_TAMPERED, verify_file
from tests.trust.conftest import run_cli

oiio = pytest.importorskip("OpenImageIO")
FRAMES = 6


@pytest.fixture(scope="module")
def signed(render, certs, tmp_path_factory):
    """The marked GRID frames as a signed ACEScg half-EXR sequence shot.1001-1006 (as merge leaves one)."""
    from facedouble.trust.seqsign import finalize_sequence
    from tests.io.test_sequence import acescg_sequence

    folder = tmp_path_factory.mktemp("seqverify") / "out"
    acescg_sequence(folder, render["marked"][:FRAMES])
    pattern = folder / "shot.%04d.exr"
    finalize_sequence(pattern, dict(render["record"]) | {"output": pattern.name}, render["target"], *certs)
    return folder


def test_signed_marked_sequence_is_a_facedouble_render(signed, key_file, render, capsys):
    for path in (signed, signed / "shot.1003.exr"):  # the folder, or any one of its frames
        report = verify_file(path, key_file=key_file)
        assert report["exit_code"] == EXIT_MARKED, report["summary"]
        assert report["sequence"]["signature"] is True and report["sequence"]["frames_ok"] == FRAMES
        assert report["watermark"]["found"] and report["watermark"]["matches_record"] is True
        assert report["render_record"]["watermark"]["payload_id"] == render["record"]["watermark"]["payload_id"]
    assert run_cli(["verify", str(signed), "--watermark-key", str(key_file)]) == EXIT_MARKED
    out = capsys.readouterr().out
    assert "facedouble-render" in out and f"{FRAMES}/{FRAMES} frames intact" in out


def test_without_key_it_is_partially_marked(signed, tmp_path, monkeypatch):
    monkeypatch.setenv("FACEDOUBLE_WORKSPACE", str(tmp_path / "empty-ws"))
    report = verify_file(signed, workspace=tmp_path / "empty-ws")
    assert report["exit_code"] == EXIT_PARTIAL and "not checked" in report["summary"]


def test_a_changed_frame_is_tampered(signed, key_file, tmp_path, capsys):
    from tests.io.test_sequence import write

    copy = tmp_path / "copy"
    shutil.copytree(signed, copy)
    from facedouble.io.sequence import read_plate

    plate = read_plate(copy / "shot.1002.exr").rgb.copy()
    plate[10:20, 10:20] *= 1.5  # a small paint-over: the file still decodes
    write(copy / "shot.1002.exr", plate.astype("float16"), "half", attrs={"oiio:ColorSpace": "ACEScg"})
    report = verify_file(copy, key_file=key_file)
    assert report["exit_code"] == EXIT_TAMPERED and report["verdict"] == "tampered"
    assert report["sequence"]["frames_changed"] == ["shot.1002.exr"] and "shot.1002.exr" in report["summary"]
    assert run_cli(["verify", str(copy / "shot.1001.exr"), "--watermark-key", str(key_file), "--json"]) == 5
    assert json.loads(capsys.readouterr().out)["verdict"] == "tampered"


def test_an_edited_record_or_a_missing_frame_is_tampered(signed, key_file, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(signed, copy)
    sidecar = copy / "shot.%04d.exr.render.json"
    rec = json.loads(sidecar.read_text())
    rec["identity"] = {"name": "someone else"}
    sidecar.write_text(json.dumps(rec))
    report = verify_file(copy, key_file=key_file)
    assert report["exit_code"] == EXIT_TAMPERED and "signature" in report["summary"]
    shutil.rmtree(copy)
    shutil.copytree(signed, copy)
    (copy / "shot.1006.exr").unlink()
    report = verify_file(copy, key_file=key_file)
    assert report["exit_code"] == EXIT_TAMPERED and report["sequence"]["frames_missing"] == ["shot.1006.exr"]
    (copy / "shot.%04d.exr.render.json.sig").unlink()
    assert verify_file(copy, key_file=key_file)["exit_code"] == EXIT_TAMPERED


def test_an_unmarked_plate_has_no_provenance(render, key_file, tmp_path):
    from tests.io.test_sequence import acescg_sequence

    acescg_sequence(tmp_path / "plate", render["frames"][:3])
    report = verify_file(tmp_path / "plate" / "shot.1001.exr", key_file=key_file)
    assert report["exit_code"] == EXIT_NOT_MARKED and report["sequence"] is None
