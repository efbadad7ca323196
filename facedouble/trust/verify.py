"""`facedouble verify FILE`: is this media marked as a facedouble render, and is its provenance intact?

Exit codes (also in `facedouble verify --help`):
  0  marked: C2PA manifest valid and watermark found
  1  not marked: no C2PA manifest, no watermark, no render record
  2  usage or environment error;  3  unreadable input
  5  C2PA manifest present but tampered (content or manifest changed after signing)
  6  marked but C2PA absent or watermark missing: e.g. a re-encoded copy (watermark survives, C2PA does not)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facedouble.errors import InputError
from facedouble.trust import c2pa_sign, record, watermark

EXIT_MARKED = 0
EXIT_NOT_MARKED = 1
EXIT_TAMPERED = 5
EXIT_PARTIAL = 6
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def verify_file(path: Path, max_frames: int = watermark.DETECT_MAX_FRAMES) -> dict[str, Any]:
    """Full verification report as a dict: c2pa, watermark, render_record, exit_code, summary."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"file not found: {path}")
    c2pa_status = c2pa_sign.read_manifest(path)
    try:
        if path.suffix.lower() in IMAGE_SUFFIXES:
            mark = watermark.detect_image(path)
        else:
            mark = watermark.detect_video(path, max_frames=max_frames)
        embedded = record.read_embedded(path)
    except InputError:
        # a tampered file may no longer decode; that is still a verdict (tampered), not an error
        if c2pa_status["status"] != "tampered":
            raise
        mark, embedded = watermark.Detection(False, None, 0, 0, 0.0), None
    sidecar_path = record.sidecar_path(path)
    rec = c2pa_status.get("record") or embedded
    payload_matches = None
    if rec and mark.found:
        payload_matches = rec.get("watermark", {}).get("payload_id") == mark.payload
    if c2pa_status["status"] == "tampered":
        code, summary = EXIT_TAMPERED, "C2PA manifest is present but does not verify: the file was altered"
    elif c2pa_status["status"] == "valid" and mark.found:
        code, summary = EXIT_MARKED, "marked synthetic: C2PA manifest valid and watermark found"
    elif c2pa_status["status"] == "valid" or mark.found or rec:
        c2pa_text = "C2PA valid" if c2pa_status["status"] == "valid" else "no C2PA manifest"
        mark_text = "watermark found, " if mark.found else "no watermark, "
        code, summary = EXIT_PARTIAL, "marked synthetic, partially: " + mark_text + c2pa_text
    else:
        code, summary = EXIT_NOT_MARKED, "no facedouble marks found"
    return {
        "file": str(path),
        "summary": summary,
        "exit_code": code,
        "c2pa": {k: v for k, v in c2pa_status.items() if k != "record"},
        "watermark": mark.to_dict() | {"matches_record": payload_matches},
        "render_record": rec,
        "render_record_source": "c2pa" if c2pa_status.get("record") else ("embedded" if embedded else None),
        "sidecar": str(sidecar_path) if sidecar_path.is_file() else None,
    }


def format_report(report: dict[str, Any]) -> str:
    """Human-readable multi-line report."""
    c2 = report["c2pa"]
    wm = report["watermark"]
    rec = report["render_record"] or {}
    lines = [
        f"{report['file']}: {report['summary']}",
        f"  C2PA:      {c2['status']}" + (f", signer {c2['signer']}" if c2.get("signer") else "")
        + ("" if c2["status"] != "valid"
           else (", trusted" if c2.get("trusted") else ", signer not on a trust list")),
        f"  watermark: {'found' if wm['found'] else 'not found'}"
        + (f", payload {wm['payload']}" if wm["found"] else "")
        + f", {wm['frames_voted']}/{wm['frames_examined']} frames voted, confidence {wm['confidence']:.2f}",
        f"  record:    {report['render_record_source'] or 'none'}"
        + (f", identity {rec.get('identity', {}).get('name')}, created {rec.get('created')}" if rec else ""),
    ]
    return "\n".join(lines)
