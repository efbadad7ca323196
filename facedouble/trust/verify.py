"""`facedouble verify FILE`: what does this media's provenance say, and is it a facedouble render?

Every C2PA manifest in the file is read (ours or not) and its history reported: signer, trust (against
`--trust-anchors PEM`, or the workspace's `trust-anchors.pem`), each action with its digitalSourceType.
The facedouble watermark is looked for with the workspace's watermark key (or `--key FILE`); without a
key it cannot be read, and the report says so.

Verdicts and exit codes (distinct; also in `facedouble verify --help`):
  0  facedouble render, marked: our C2PA manifest valid and the watermark found, matching its record
  1  no provenance found: no C2PA manifest, no facedouble watermark, no render record
  3  unreadable: not a media file facedouble can decode, and no manifest
  5  tampered: a C2PA manifest is present but the content or the manifest changed after signing
  6  facedouble render, partially marked: e.g. re-encoded (watermark found, C2PA gone), or no key to
     check the watermark of a signed render
  7  facedouble mark and record disagree: the watermark's payload is not the one the record names
  8  other provenance showing generative or composited AI (a third-party manifest)
  9  provenance showing an unedited capture (c2pa.created with digitalCapture, no edits)
 10  provenance showing edits without AI (or no AI declared)
 11  signer untrusted or certificate expired/revoked (with a trust list configured): not tampering
  2  usage error;  70  internal error (a crash: never one of the verdicts above)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facedouble.errors import InputError
from facedouble.trust import c2pa_sign, record, watermark

EXIT_MARKED = 0
EXIT_NOT_MARKED = 1  # "no provenance found"
EXIT_UNREADABLE = 3
EXIT_TAMPERED = 5
EXIT_PARTIAL = 6
EXIT_MISMATCH = 7
EXIT_OTHER_AI = 8
EXIT_CAPTURE = 9
EXIT_EDITED = 10
EXIT_UNTRUSTED = 11
VERDICTS = {
    EXIT_MARKED: "facedouble-render",
    EXIT_NOT_MARKED: "no-provenance",
    EXIT_UNREADABLE: "unreadable",
    EXIT_TAMPERED: "tampered",
    EXIT_PARTIAL: "facedouble-render-partial",
    EXIT_MISMATCH: "mark-record-mismatch",
    EXIT_OTHER_AI: "other-provenance-ai",
    EXIT_CAPTURE: "capture-unedited",
    EXIT_EDITED: "edited-without-ai",
    EXIT_UNTRUSTED: "signer-untrusted",
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
TRUST_ANCHORS_FILE = "trust-anchors.pem"  # in the workspace: the configured trust list
_IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
# digitalSourceType values that say generative or composited AI (IPTC vocabulary)
AI_SOURCE_TYPES = {_IPTC + t for t in ("trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia",
                                       "algorithmicMedia", "compositeSynthetic", "algorithmicallyEnhanced")}
CAPTURE_SOURCE_TYPES = {_IPTC + t for t in ("digitalCapture", "negativeFilm", "positiveFilm", "print",
                                            "computationalCapture")}
NON_EDIT_ACTIONS = {"c2pa.created", "c2pa.published", "c2pa.transcoded", "c2pa.repackaged"}


def trust_anchors_text(path: str | Path | None = None, workspace: str | Path | None = None) -> str | None:
    """PEM text of the trust list: `path`, else the workspace's trust-anchors.pem if there, else None."""
    from facedouble.policy.keys import workspace_path

    candidate = Path(path) if path else workspace_path(workspace) / TRUST_ANCHORS_FILE
    if not candidate.is_file():
        if path:
            raise InputError(f"trust anchors file not found: {path}")
        return None
    text = candidate.read_text(encoding="utf-8", errors="replace")
    if "BEGIN CERTIFICATE" not in text:
        raise InputError(f"{candidate} holds no PEM certificate")
    return text


def watermark_key(key_file: str | Path | None = None,
                  workspace: str | Path | None = None) -> watermark.WatermarkKey | None:
    """The key the watermark is read with: `key_file`, else the workspace's, else None (cannot be read)."""
    if key_file:
        return watermark.WatermarkKey.from_file(key_file)
    from facedouble.policy.keys import key_path

    path = key_path(workspace, watermark.KEY_NAME)
    return watermark.WatermarkKey.from_file(path) if path.is_file() else None


def classify_history(manifests: list[dict[str, Any]]) -> int:
    """Verdict of a valid third-party history: AI anywhere, an unedited capture, or edited without AI."""
    actions = [a for m in manifests for a in m.get("actions", [])]
    if any(a.get("digitalSourceType") in AI_SOURCE_TYPES for a in actions):
        return EXIT_OTHER_AI
    created = [a for a in actions if a.get("action") == "c2pa.created"]
    if (created and all(a.get("digitalSourceType") in CAPTURE_SOURCE_TYPES for a in created)
            and all(a.get("action") in NON_EDIT_ACTIONS for a in actions)):
        return EXIT_CAPTURE
    return EXIT_EDITED


def _detect(path: Path, key: watermark.WatermarkKey | None) -> watermark.Detection | None:
    if key is None:
        return None
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return watermark.detect_image(path, key)
    return watermark.detect_video(path, key)


def verify_file(path: Path, *, key_file: str | Path | None = None, trust_anchors: str | Path | None = None,
                workspace: str | Path | None = None) -> dict[str, Any]:
    """Full verification report as a dict: verdict, exit_code, summary, c2pa (with history), watermark,
    render_record. `workspace` (default FACEDOUBLE_WORKSPACE) supplies the watermark key and trust list
    unless `key_file` / `trust_anchors` (a PEM file) are given."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"file not found: {path}")
    anchors = trust_anchors_text(trust_anchors, workspace)
    key = watermark_key(key_file, workspace)
    c2pa_status = c2pa_sign.read_manifest(path, anchors)
    unreadable = None
    try:
        mark = _detect(path, key)
        embedded = record.read_embedded(path)
    except InputError as exc:
        # a tampered file may no longer decode: still a verdict (tampered); otherwise it is unreadable
        mark, embedded, unreadable = None, None, str(exc)
    ours = c2pa_status.get("record") if c2pa_status["status"] == "valid" else None
    rec = ours or embedded
    found = mark is not None and mark.found
    payload_matches = None
    if rec and found:
        payload_matches = rec.get("watermark", {}).get("payload_id") == mark.payload
    code, summary = _verdict(c2pa_status, rec, ours, mark, payload_matches, unreadable, key is not None)
    detection = mark.to_dict() if mark is not None else watermark.Detection(False, None, 0, 0, 0.0).to_dict()
    sidecar_path = record.sidecar_path(path)
    return {
        "file": str(path),
        "verdict": VERDICTS[code],
        "summary": summary,
        "exit_code": code,
        "c2pa": {k: v for k, v in c2pa_status.items() if k != "record"},
        "watermark": detection | {"matches_record": payload_matches, "checked": key is not None,
                                  "key_id": key.key_id if key is not None else None},
        "render_record": rec,
        "render_record_source": "c2pa" if ours else ("embedded" if embedded else None),
        "sidecar": str(sidecar_path) if sidecar_path.is_file() else None,
        "unreadable": unreadable,
    }


def _verdict(c2pa_status: dict[str, Any], rec: dict | None, ours: dict | None,
             mark: watermark.Detection | None, payload_matches: bool | None, unreadable: str | None,
             have_key: bool) -> tuple[int, str]:
    status = c2pa_status["status"]
    found = mark is not None and mark.found
    if status == "tampered":
        return EXIT_TAMPERED, "C2PA manifest is present but does not verify: the file was altered"
    if status == "valid" and c2pa_status.get("trust_list") and not c2pa_status.get("trusted"):
        why = "certificate expired or revoked" if c2pa_status.get("expired") else "not on the trust list"
        return EXIT_UNTRUSTED, f"C2PA manifest intact but its signer is untrusted ({why})"
    if unreadable is not None and status == "absent":
        return EXIT_UNREADABLE, f"unreadable: {unreadable}"
    if rec or found:
        if payload_matches is False:
            return EXIT_MISMATCH, ("facedouble watermark found, but its payload does not match the render record: "
                                   "the record belongs to another render")
        if ours and found:
            return EXIT_MARKED, "marked synthetic: C2PA manifest valid and watermark found"
        mark_text = ("watermark found" if found else "no watermark" if have_key
                     else "watermark not checked (no key: pass --key or use the workspace)")
        c2pa_text = "C2PA valid" if ours else "no facedouble C2PA manifest"
        return EXIT_PARTIAL, f"marked synthetic, partially: {mark_text}, {c2pa_text}"
    if status == "valid":
        code = classify_history(c2pa_status.get("manifests", []))
        signer = c2pa_status.get("signer") or "unknown signer"
        trust = "trusted" if c2pa_status.get("trusted") else "signer not checked against a trust list" \
            if not c2pa_status.get("trust_list") else "untrusted"
        text = {EXIT_OTHER_AI: "other provenance: generative or composited AI declared",
                EXIT_CAPTURE: "provenance shows an unedited capture",
                EXIT_EDITED: "provenance shows edits, no AI declared"}[code]
        return code, f"{text} (signed by {signer}, {trust}); not a facedouble render"
    if not have_key:
        return EXIT_NOT_MARKED, ("no provenance found: no C2PA manifest, no render record (the facedouble watermark "
                                 "was not checked: no key; pass --key or use the workspace)")
    return EXIT_NOT_MARKED, "no provenance found: no C2PA manifest, no facedouble watermark, no render record"


def format_report(report: dict[str, Any]) -> str:
    """Human-readable multi-line report."""
    c2 = report["c2pa"]
    wm = report["watermark"]
    rec = report["render_record"] or {}
    trust = ("" if c2["status"] != "valid" else ", trusted" if c2.get("trusted")
             else ", signer not on a trust list" if not c2.get("trust_list") else ", signer untrusted")
    if not wm.get("checked"):
        mark = "not checked (no watermark key)"
    else:
        mark = (f"{'found' if wm['found'] else 'not found'}" + (f", payload {wm['payload']}" if wm["found"] else "")
                + f", {wm['frames_voted']}/{wm['frames_examined']} frames voted, confidence {wm['confidence']:.2f}"
                + ("" if wm.get("matches_record") is None
                   else ", matches the record" if wm["matches_record"] else ", DOES NOT match the record"))
    lines = [
        f"{report['file']}: {report['summary']}",
        f"  verdict:   {report['verdict']} (exit {report['exit_code']})",
        f"  C2PA:      {c2['status']}" + (f", signer {c2['signer']}" if c2.get("signer") else "") + trust,
    ]
    for manifest in c2.get("manifests", []):
        acts = "; ".join(f"{a.get('action')}" + (f" [{str(a['digitalSourceType']).rsplit('/', 1)[-1]}]"
                                                if a.get("digitalSourceType") else "")
                         for a in manifest.get("actions", []))
        lines.append(f"    {'active' if manifest.get('active') else 'earlier'}: {manifest.get('signer')}"
                     f" ({manifest.get('claim_generator') or 'unknown tool'}): {acts or 'no actions'}")
    lines += [
        f"  watermark: {mark}",
        f"  record:    {report['render_record_source'] or 'none'}"
        + (f", identity {rec.get('identity', {}).get('name')}, created {rec.get('created')}" if rec else ""),
    ]
    return "\n".join(lines)
