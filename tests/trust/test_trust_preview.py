"""Previews are swaps too: consent-checked, watermarked and labelled, by the CLI and the library alike."""

from __future__ import annotations

import numpy as np
import pytest

from facedouble.config import to_dict
from facedouble.errors import PolicyError
from facedouble.merge.pipeline import MergeConfig, MergeHooks, preview
from facedouble.trust import watermark as wm
from facedouble.trust.render import PREVIEW_LABEL, payload_for, render_preview
from tests.standin import ShiftSwapper

CLIP = "bbaf2n"
CONFIG = MergeConfig(segment_frames=20, batch=6, colour="rct")
CONSENT = {"name": "test-performer"}


@pytest.fixture(autouse=True)
def workspace(tmp_path, monkeypatch):
    """A workspace holding the performer's consent record, made the default one."""
    from facedouble.consent.records import add_identity

    release = tmp_path / "release.txt"
    release.write_text("signed release\n")
    monkeypatch.setitem(CONSENT, "record_hash", add_identity(tmp_path / "ws", CONSENT["name"], release).record_hash)
    monkeypatch.setenv("FACEDOUBLE_WORKSPACE", str(tmp_path / "ws"))
    return tmp_path / "ws"


def _consented() -> ShiftSwapper:
    model = ShiftSwapper(96)
    model.consent = dict(CONSENT)
    return model


@pytest.fixture(scope="module")
def faceset(grid_faceset):
    return grid_faceset(CLIP, size=64, face_type="full")


def test_preview_without_consent_is_refused(faceset, workspace):
    with pytest.raises(PolicyError, match="no consent record"):
        render_preview(ShiftSwapper(96), faceset, 5, config=CONFIG)
    forged = ShiftSwapper(96)
    forged.consent = {"name": CONSENT["name"], "record_hash": "ab" * 32}  # a hash the record does not have
    with pytest.raises(PolicyError, match="does not match"):
        render_preview(forged, faceset, 5, config=CONFIG)


def test_preview_of_a_withdrawn_consent_is_refused(faceset, workspace):
    from facedouble.consent.records import revoke_identity

    revoke_identity(workspace, CONSENT["name"], reason="performer asked")
    with pytest.raises(PolicyError, match="withdrawn"):
        render_preview(_consented(), faceset, 5, config=CONFIG)


def test_library_preview_is_watermarked_and_labelled(faceset, grid_clip, workspace):
    model = _consented()
    marked = render_preview(model, faceset, 5, config=CONFIG)
    bare = preview(model, faceset, 5, MergeHooks(post_composite=[lambda ctx: None]), CONFIG)
    assert marked.shape == bare.shape and marked.dtype == np.uint8
    assert not np.array_equal(marked, bare)
    found = wm.detect_frames([marked], wm.WatermarkKey.for_workspace(workspace))
    assert found.found and found.payload == payload_for(model.model_hash, grid_clip(CLIP), to_dict(CONFIG.validate()))
    # The visible label is burnt in: another label text changes the frame, and "SYNTHETIC PREVIEW" stays.
    other = render_preview(model, faceset, 5, config=CONFIG, label="TAKE 3")
    assert not np.array_equal(other, marked) and PREVIEW_LABEL == "SYNTHETIC PREVIEW"


def test_preview_with_a_reused_plan_equals_one_without_and_keeps_every_check(faceset, workspace):
    from facedouble.consent.records import revoke_identity
    from facedouble.errors import FacedoubleError
    from facedouble.merge.pipeline import load_plan

    model = _consented()
    plan = load_plan(model, faceset, CONFIG.validate(), None)
    fresh = render_preview(model, faceset, 5, config=CONFIG, label="TAKE 3")
    np.testing.assert_array_equal(render_preview(model, faceset, 5, config=CONFIG, label="TAKE 3", plan=plan), fresh)
    assert wm.detect_frames([fresh], wm.WatermarkKey.for_workspace(workspace)).found
    with pytest.raises(FacedoubleError, match="another model"):  # a plan for another resolution is refused
        render_preview(_consented_at(64), faceset, 5, config=CONFIG, plan=plan)
    revoke_identity(workspace, CONSENT["name"], reason="performer asked")
    with pytest.raises(PolicyError, match="withdrawn"):  # the consent check still runs with a reused plan
        render_preview(model, faceset, 5, config=CONFIG, plan=plan)


def _consented_at(resolution: int) -> ShiftSwapper:
    model = ShiftSwapper(resolution)
    model.consent = dict(CONSENT)
    return model


def test_library_preview_cannot_skip_the_marks(faceset):
    with pytest.raises(PolicyError, match="must be marked"):
        preview(_consented(), faceset, 5, MergeHooks(), CONFIG)
    with pytest.raises(TypeError):
        preview(_consented(), faceset, 5)  # hooks are a required argument


def test_cli_preview_refuses_unconsented_and_marks_consented(faceset, tmp_path, monkeypatch, capsys, workspace):
    import cv2

    import facedouble.cli as cli
    from facedouble.merge import model as model_module

    monkeypatch.setattr(model_module, "load_model", lambda path, **options: ShiftSwapper(96))
    png = tmp_path / "p.png"
    code = cli.main(["merge", "--model", "m", "--target", str(faceset), "--out", str(png), "--preview", "5"])
    assert code != 0 and not png.exists() and "no consent record" in capsys.readouterr().err
    monkeypatch.setattr(model_module, "load_model", lambda path, **options: _consented())
    code = cli.main(["merge", "--model", "m", "--target", str(faceset), "--out", str(png), "--preview", "5"])
    assert code == 0 and png.exists()
    image = cv2.cvtColor(cv2.imread(str(png)), cv2.COLOR_BGR2RGB)
    assert wm.detect_frames([image], wm.WatermarkKey.for_workspace(workspace)).found
