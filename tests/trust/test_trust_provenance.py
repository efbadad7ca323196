"""Render record, C2PA round trip on MP4 and PNG, tamper detection, verify exit codes, label."""

from __future__ import annotations

import json

import cv2
import numpy as np
from conftest import PAYLOAD, grid_clip, read_frames, run_cli

from facedouble.trust import c2pa_sign, record, verify
from facedouble.trust.label import apply_label
from tests.footage import write_clip


def test_record_beside_and_inside_mp4(render):
    rec = render["record"]
    assert rec["synthetic"] and rec["watermark"]["payload_id"] == PAYLOAD
    assert rec["target"]["sha256"] and rec["identity"]["consent_record_sha256"] == "0" * 64
    assert json.loads(record.sidecar_path(render["path"]).read_text()) == rec
    assert record.read_embedded(render["path"]) == rec  # survives C2PA signing


def test_c2pa_roundtrip_mp4(render):
    status = c2pa_sign.read_manifest(render["path"])
    assert status["status"] == "valid", status
    assert status["signer"] == "facedouble test signer" and status["trusted"] is False
    assert status["record"] == render["record"]


def test_c2pa_png_roundtrip_tamper_and_absent(render, certs, tmp_path, key_file):
    png = tmp_path / "frame.png"
    cv2.imwrite(str(png), cv2.cvtColor(render["marked"][0], cv2.COLOR_RGB2BGR))
    assert c2pa_sign.read_manifest(png)["status"] == "absent"
    record.embed_in_image(png, render["record"])
    c2pa_sign.sign_file(png, render["record"], render["target"], *certs)
    status = c2pa_sign.read_manifest(png)
    assert status["status"] == "valid" and status["record"]["watermark"]["payload_id"] == PAYLOAD
    assert record.read_embedded(png) == render["record"]
    # a still: C2PA valid + watermark in one frame
    assert run_cli(["verify", str(png), "--watermark-key", str(key_file)]) == verify.EXIT_MARKED
    data = bytearray(png.read_bytes())
    data[len(data) // 2] ^= 0x01  # one byte of pixel data
    tampered = tmp_path / "tampered.png"
    tampered.write_bytes(bytes(data))
    assert c2pa_sign.read_manifest(tampered)["status"] == "tampered"
    assert run_cli(["verify", str(tampered), "--watermark-key", str(key_file)]) == verify.EXIT_TAMPERED


def test_c2pa_mp4_one_byte_tamper(render, tmp_path):
    data = bytearray(render["path"].read_bytes())
    data[-2000] ^= 0x01  # inside the media data
    tampered = tmp_path / "tampered.mp4"
    tampered.write_bytes(bytes(data))
    assert c2pa_sign.read_manifest(tampered)["status"] == "tampered"


def test_verify_exit_codes(render, tmp_path, capsys, key_file):
    key = ["--watermark-key", str(key_file)]
    assert run_cli(["verify", str(render["path"]), *key]) == verify.EXIT_MARKED
    assert "marked synthetic" in capsys.readouterr().out
    # re-encoded at CRF 28 and downscaled 50%: C2PA is gone, the watermark is still found
    assert run_cli(["verify", "--json", str(render["attacked"]), *key]) == verify.EXIT_PARTIAL
    report = json.loads(capsys.readouterr().out)
    assert report["c2pa"]["status"] == "absent"
    assert report["watermark"]["found"] and report["watermark"]["payload"] == PAYLOAD
    clean = write_clip(tmp_path / "clean.mp4", read_frames(grid_clip("bbaf2n"), 12), crf=23)
    assert run_cli(["verify", str(clean), *key]) == verify.EXIT_NOT_MARKED
    assert run_cli(["verify", str(tmp_path / "missing.mp4"), *key]) == 3


def test_label_visible_and_local():
    frame = read_frames(grid_clip("lbbc2a"), 1)[0]
    out = apply_label(frame, "SYNTHETIC")
    changed = np.any(out != frame, axis=2)
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 200 and ys.min() > frame.shape[0] * 0.7 and xs.max() < frame.shape[1] * 0.6
