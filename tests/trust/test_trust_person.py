"""Consent tied to the person: a record's reference faces are checked against every faceset bound or trained
on; GRID's same-speaker pair (id2_vcd_swwp2s / pwij3p) passes, another speaker is refused."""

from __future__ import annotations

import json
import shutil

import pytest

from facedouble.consent import person
from facedouble.consent import records as consent
from facedouble.errors import InputError, PolicyError

REFERENCE, SAME, OTHER = "id2_vcd_swwp2s", "pwij3p", "bbaf2n"


@pytest.fixture(scope="module")
def faces(grid_faceset):
    """Facesets of the three clips (identity embedding every 5th face, as a release session would keep)."""
    return {stem: grid_faceset(stem, size=64, face_type="full", embed_every=5) for stem in (REFERENCE, SAME, OTHER)}


@pytest.fixture()
def ws(tmp_path, faces):
    release = tmp_path / "release.pdf"
    release.write_text("signed release of the GRID speaker\n")
    record = consent.add_identity(tmp_path / "ws", "speaker", release, reference=faces[REFERENCE])
    return tmp_path / "ws", record


def test_record_holds_reference_embeddings(ws):
    workspace, record = ws
    refs = consent.load_identity(workspace, "speaker").reference_embeddings
    assert refs and len(refs[0]) == 128 and len(refs) <= person.MAX_REFERENCES
    assert consent.load_identity(workspace, "speaker").record_hash == record.record_hash


def test_same_person_binds_and_trains_another_person_is_refused(ws, faces, tmp_path):
    workspace, _ = ws
    same = tmp_path / "same"
    shutil.copytree(faces[SAME], same)
    consent.bind_faceset(workspace, "speaker", same)  # the same speaker, another session
    assert consent.require_consent(same, workspace).name == "speaker"
    other = tmp_path / "other"
    shutil.copytree(faces[OTHER], other)
    with pytest.raises(PolicyError, match="not the person who signed"):
        consent.bind_faceset(workspace, "speaker", other)
    # the binding copied from the consented faceset onto the other speaker's faces: refused at training
    shutil.copy(same / consent.BINDING_FILE, other / consent.BINDING_FILE)
    with pytest.raises(PolicyError, match="not the person who signed"):
        consent.require_consent(other, workspace)


def test_threshold_separates_grid_same_and_cross_person(faces):
    refs = person.reference_embeddings(faces[REFERENCE])
    same = person.identity_distance(person.faceset_embeddings(faces[SAME]), refs)
    other = person.identity_distance(person.faceset_embeddings(faces[OTHER]), refs)
    assert same <= person.THRESHOLD < other, (same, other)


def test_record_without_references_is_refused_at_bind_and_train_and_malformed_ones_too(tmp_path, faces):
    release = tmp_path / "r.pdf"
    release.write_text("release\n")
    consent.add_identity(tmp_path / "ws", "old", release)  # the API still makes one (a render-only record)
    target = tmp_path / "fs"
    shutil.copytree(faces[OTHER], target)
    with pytest.raises(PolicyError, match="holds no reference faces") as refused:
        consent.bind_faceset(tmp_path / "ws", "old", target)
    assert "\n" not in str(refused.value) and "--reference" in str(refused.value)  # one line, naming the fix
    assert not (target / consent.BINDING_FILE).exists()
    # a binding written by an older facedouble (which bound such records) is refused at training
    record = consent.load_identity(tmp_path / "ws", "old")
    (target / consent.BINDING_FILE).write_text(json.dumps({"version": 1, "identity": "old",
                                                          "record_hash": record.record_hash}))
    with pytest.raises(PolicyError, match="holds no reference faces"):
        consent.require_consent(target, tmp_path / "ws")
    path = tmp_path / "ws" / "identities" / "old.json"
    data = json.loads(path.read_text())
    path.write_text(json.dumps(data | {"reference_embeddings": [[0.1, 0.2]]}))
    with pytest.raises(InputError, match="reference_embeddings"):
        consent.load_identity(tmp_path / "ws", "old")
