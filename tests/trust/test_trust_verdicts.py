"""`verify` tells the truth about any footage: third-party manifests, camera captures, trust anchors, a keyed
watermark that cannot be forged from the code's constants, whole-clip sampling, payload/record mismatch."""

from __future__ import annotations

import json
import stat

import numpy as np
import pytest
from conftest import PAYLOAD, grid_clip, read_frames, run_cli

from facedouble.trust import c2pa_sign, record, verify
from facedouble.trust import watermark as wm
from facedouble.trust.watermark_basis import DITHER
from tests.footage import write_clip

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory):
    """A third party's signer (a camera maker, another tool), from its own test CA."""
    return c2pa_sign.init_test_ca(tmp_path_factory.mktemp("camera") / "certs", common_name="test camera")


@pytest.fixture(scope="module")
def plain_clip(tmp_path_factory):
    """12 unmarked GRID frames as an MP4 (what a camera or another tool hands over)."""
    return write_clip(tmp_path_factory.mktemp("plain") / "plain.mp4", read_frames(grid_clip("bbaf2n"), 12), crf=23)


def _signed_copy(clip, folder, name, actions, ca):
    out = folder / name
    out.write_bytes(clip.read_bytes())
    manifest = {"claim_generator_info": [{"name": "TestCam", "version": "1"}], "title": name,
                "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": actions}}]}
    c2pa_sign.sign_manifest(out, manifest, *ca)
    return out


def _verify(path, *extra) -> tuple[int, dict]:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = run_cli(["verify", "--json", str(path), *extra])
    return code, json.loads(buffer.getvalue())


def test_camera_capture_verifies_as_an_unedited_capture(plain_clip, other_ca, tmp_path, key_file):
    capture = _signed_copy(plain_clip, tmp_path, "capture.mp4",
                           [{"action": "c2pa.created", "digitalSourceType": IPTC + "digitalCapture"}], other_ca)
    code, report = _verify(capture, "--watermark-key", str(key_file))
    assert code == verify.EXIT_CAPTURE and report["verdict"] == "capture-unedited", report["summary"]
    assert "synthetic" not in report["summary"]
    history = report["c2pa"]["manifests"]
    assert history[0]["signer"] == "test camera" and history[0]["claim_generator"] == "TestCam"
    assert history[0]["actions"][0]["digitalSourceType"] == IPTC + "digitalCapture"
    assert not history[0]["facedouble_record"]


def test_other_ai_and_plain_edits_are_told_apart(plain_clip, other_ca, tmp_path, key_file):
    ai = _signed_copy(plain_clip, tmp_path, "ai.mp4",
                      [{"action": "c2pa.created", "digitalSourceType": IPTC + "trainedAlgorithmicMedia"}], other_ca)
    assert _verify(ai, "--watermark-key", str(key_file))[0] == verify.EXIT_OTHER_AI
    edited = _signed_copy(plain_clip, tmp_path, "edit.mp4",
                          [{"action": "c2pa.created", "digitalSourceType": IPTC + "digitalCapture"},
                           {"action": "c2pa.color_adjustments"}], other_ca)
    code, report = _verify(edited, "--watermark-key", str(key_file))
    assert code == verify.EXIT_EDITED and "not a facedouble render" in report["summary"]


def test_trust_anchors_decide_trusted_or_untrusted(render, certs, other_ca, key_file):
    ours = certs[0].parent / "root.pem"
    code, report = _verify(render["path"], "--watermark-key", str(key_file), "--trust-anchors", str(ours))
    assert code == verify.EXIT_MARKED and report["c2pa"]["trusted"] is True
    stranger = other_ca[0].parent / "root.pem"
    code, report = _verify(render["path"], "--watermark-key", str(key_file), "--trust-anchors", str(stranger))
    assert code == verify.EXIT_UNTRUSTED and "untrusted" in report["summary"] and "altered" not in report["summary"]


def test_no_key_means_the_mark_is_not_read(render, tmp_path):
    code, report = _verify(render["path"], "--workspace", str(tmp_path / "empty-ws"))
    assert code == verify.EXIT_PARTIAL and report["watermark"]["checked"] is False
    assert "not checked" in report["summary"]


def test_payload_that_does_not_match_the_signed_record_changes_the_verdict(render, certs, tmp_path, key_file):
    out = write_clip(tmp_path / "relabelled.mp4", render["marked"], crf=18)
    other = dict(render["record"], watermark={**render["record"]["watermark"], "payload_id": PAYLOAD ^ 1})
    c2pa_sign.sign_file(out, other, None, *certs)
    code, report = _verify(out, "--watermark-key", str(key_file))
    assert code == verify.EXIT_MISMATCH and report["watermark"]["matches_record"] is False


def test_prepended_footage_does_not_hide_the_render(render, tmp_path, wm_key):
    original = read_frames(grid_clip("pwij3p"))
    before = (original * 4)[:250]  # 10 s of the original footage in front of the 2-s render
    clip = write_clip(tmp_path / "prepended.mp4", before + render["marked"], crf=28)
    found = wm.detect_video(clip, wm_key)
    assert found.found and found.payload == PAYLOAD, found
    assert wm.sample_windows(300)[-1] == 250  # the last window is the clip's end


def test_forged_marks_are_not_ours(tmp_path, wm_key, key_file):
    frames = read_frames(grid_clip("lbbc2a"), 25)
    boxes = [wm._faces(f)[0][1] for f in frames]
    public = wm.WatermarkKey(dither=DITHER, mask=0x5A3C_96E1, key_id="public")  # the code's old constants
    attacker = wm.WatermarkKey.from_secret(b"an attacker's own key, not ours!")
    for name, key in (("public", public), ("attacker", attacker)):
        marker = wm.Watermarker(PAYLOAD, key)
        forged = [marker.embed(f, b, frame_index=i) for i, (f, b) in enumerate(zip(frames, boxes, strict=True))]
        assert wm.detect_frames(forged, key).found  # a real mark under the forger's key...
        assert not wm.detect_frames(forged, wm_key).found  # ...that verify, with our key, does not read
        clip = write_clip(tmp_path / f"{name}.mp4", forged, crf=18)
        code, report = _verify(clip, "--watermark-key", str(key_file))
        assert code == verify.EXIT_NOT_MARKED, (name, report["summary"])


@pytest.mark.parametrize("algorithm", ["es384", "ps256", "ed25519"])
def test_signing_algorithm_follows_the_key(algorithm, plain_clip, tmp_path, render):
    cert, key = c2pa_sign.init_test_ca(tmp_path / "certs", algorithm=algorithm)
    assert c2pa_sign.signing_alg(key.read_bytes()) == algorithm
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert not (tmp_path / "certs" / "root.key").exists()  # the root key is kept apart from the signer
    root_key = tmp_path / "certs-root-ca" / "root.key"
    assert stat.S_IMODE(root_key.stat().st_mode) == 0o600
    out = tmp_path / "signed.mp4"
    out.write_bytes(plain_clip.read_bytes())
    c2pa_sign.sign_file(out, render["record"], None, cert, key)
    status = c2pa_sign.read_manifest(out)
    assert status["status"] == "valid" and status["manifests"][0]["facedouble_record"], status


def test_watermark_key_is_private_and_unprinted(tmp_path, capsys):
    from facedouble.policy.keys import key_path

    key = wm.WatermarkKey.for_workspace(tmp_path / "ws", create=True)
    path = key_path(tmp_path / "ws", "watermark")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = wm.WatermarkKey.for_workspace(tmp_path / "ws")  # read back, not made anew
    assert again.key_id == key.key_id and np.array_equal(again.dither, key.dither)
    assert path.read_text().strip() not in capsys.readouterr().out
    assert record.build_record(model_hash="0", consent={"name": "x"}, target=tmp_path, settings={},
                               payload_id=1, watermark_key_id=key.key_id)["watermark"]["key_id"] == key.key_id
