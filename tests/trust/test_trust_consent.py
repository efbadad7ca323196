"""Consent records: required, recorded, bound to facesets that may be copied, refused when invalid."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pytest
from conftest import run_cli

from facedouble.consent import records as consent
from facedouble.errors import PolicyError
from facedouble.io.atomic import atomic_write_json


@pytest.fixture
def workspace(tmp_path, grid_faceset):
    """(workspace, release, faceset): a copy of a GRID speaker's faceset (identity embedding every 5th face),
    which is also the records' reference (the release session)."""
    release = tmp_path / "release.pdf"
    release.write_bytes(b"%PDF-1.4 signed release of Jane Doe")
    faceset = tmp_path / "faceset"
    shutil.copytree(grid_faceset("bbaf2n", size=64, face_type="full", embed_every=5), faceset)
    return tmp_path / "ws", release, faceset


def test_add_bind_require_and_copy(workspace, tmp_path):
    ws, release, faceset = workspace
    rec = consent.add_identity(ws, "jane-doe", release, scope="feature film X", expires="2099-12-31",
                               reference=faceset)
    with pytest.raises(PolicyError, match="not bound"):
        consent.require_consent(faceset, ws)
    consent.bind_faceset(ws, "jane-doe", faceset)
    got = consent.require_consent(faceset, ws)
    assert got.name == "jane-doe" and got.record_hash == rec.record_hash
    assert got.to_dict()["release_sha256"] == consent.sha256_file(release)
    copy = tmp_path / "elsewhere" / "faceset-copy"
    shutil.copytree(faceset, copy)
    assert consent.require_consent(copy, ws).record_hash == rec.record_hash


def test_refusals(workspace, monkeypatch):
    ws, release, faceset = workspace
    with pytest.raises(PolicyError, match="no consent record"):
        consent.bind_faceset(ws, "nobody", faceset)
    consent.add_identity(ws, "jane-doe", release, reference=faceset)
    consent.bind_faceset(ws, "jane-doe", faceset)
    # record edited after binding (scope widened): the bound hash no longer matches
    path = ws / "identities" / "jane-doe.json"
    data = json.loads(path.read_text())
    atomic_write_json(path, data | {"scope": "anything"})
    with pytest.raises(PolicyError, match="does not match"):
        consent.require_consent(faceset, ws)
    atomic_write_json(path, data)
    assert consent.require_consent(faceset, ws).name == "jane-doe"
    # release document changed on disk
    release.write_bytes(b"%PDF-1.4 a different document")
    with pytest.raises(PolicyError, match="changed"):
        consent.require_consent(faceset, ws)


def test_expired_record_refused(workspace):
    ws, release, faceset = workspace
    rec = consent.add_identity(ws, "old", release, expires=dt.date.today().isoformat(), reference=faceset)
    expired = consent.ConsentRecord(**(rec.to_dict() | {"expires": "2020-01-01"}))
    atomic_write_json(ws / "identities" / "old.json", expired.to_dict())
    atomic_write_json(faceset / consent.BINDING_FILE, {"version": 1, "identity": "old",
                                                       "record_hash": expired.record_hash})
    with pytest.raises(PolicyError, match="expired"):
        consent.require_consent(faceset, ws)


def test_cli_identity_commands(workspace, capsys):
    ws, release, faceset = workspace
    assert run_cli(["identity", "add", "jane-doe", "--workspace", str(ws), "--release", str(release),
                    "--scope", "film", "--expires", "2099-01-01", "--notes", "ok", "--reference", str(faceset)]) == 0
    assert run_cli(["identity", "add", "jane-doe", "--workspace", str(ws), "--release", str(release),
                    "--reference", str(faceset)]) == 2
    assert run_cli(["identity", "list", "--workspace", str(ws)]) == 0
    assert run_cli(["identity", "show", "jane-doe", "--workspace", str(ws)]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 2)[-1])["scope"] == "film"
    assert run_cli(["identity", "bind", "jane-doe", str(faceset), "--workspace", str(ws)]) == 0
    assert run_cli(["identity", "bind", "ghost", str(faceset), "--workspace", str(ws)]) == 4
    assert run_cli(["identity", "add", "x", "--workspace", str(ws), "--release", str(release),
                    "--expires", "not-a-date", "--reference", str(faceset)]) == 3
    with pytest.raises(SystemExit):  # a record the faces cannot be checked against is not made from the CLI
        run_cli(["identity", "add", "y", "--workspace", str(ws), "--release", str(release)])
    assert "--reference" in capsys.readouterr().err
