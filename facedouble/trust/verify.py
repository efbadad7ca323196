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

An image sequence (EXR, DPX, 16-bit PNG/TIFF; a folder, or one of its frames) is verified as a whole through
its signed record sidecar (`shot.%04d.exr.render.json` with `.sig` and `.pem`: EXR and DPX cannot hold a C2PA
manifest): the signature and every frame's SHA-256 are checked, and the watermark is looked for in frames
spread over the sequence. Same verdicts: a changed or missing frame, or a record whose signature fails, is
tampered (5); signature, frames and watermark all good is marked (0).
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
# frames that may belong to a signed sequence (facedouble.trust.seqsign); a PNG/TIFF frame with no sequence
# record around it is verified as a single image
SEQUENCE_FRAME_SUFFIXES = (".exr", ".dpx", ".tif", ".tiff", ".png")
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
    if path.is_dir() or (path.is_file() and path.suffix.lower() in SEQUENCE_FRAME_SUFFIXES):
        from facedouble.trust.seqsign import find_sequence_record

        pattern = find_sequence_record(path)
        # EXR/DPX frames are always judged with their sequence: they carry no C2PA manifest of their own
        if pattern is not None or path.is_dir() or path.suffix.lower() in (".exr", ".dpx"):
            return verify_sequence(path, pattern, key_file=key_file, workspace=workspace)
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


def _sequence_watermark(folder: Path, key: watermark.WatermarkKey) -> watermark.Detection:
    """The mark in windows of frames spread over the sequence in `folder` (its 8-bit working view, the one
    merge marked), as `detect_video` samples a clip."""
    from facedouble.io.video import open_source

    source = open_source(folder)
    lumas: list = []
    groups: list[int] = []
    examined = 0
    for number, first in enumerate(watermark.sample_windows(source.info.frame_count or 0)):
        for frame in source.frames(first):
            if frame.index >= first + watermark.DETECT_WINDOW:
                break
            examined += 1
            faces = watermark.observe(frame.image)
            lumas += faces
            groups += [number] * len(faces)
    return watermark.decide(lumas, examined, key, groups=groups)


def verify_sequence(path: Path, pattern: Path | None, *, key_file: str | Path | None = None,
                    workspace: str | Path | None = None) -> dict[str, Any]:
    """Verification report (verify_file's keys, plus "sequence") of the image sequence `path` (its folder or
    one frame) whose signed record is `pattern`'s sidecar (None: no record found)."""
    import json

    from facedouble.trust.seqsign import verify_sidecar

    path = Path(path)
    folder = path if path.is_dir() else path.parent
    key = watermark_key(key_file, workspace)
    check, rec, unreadable, mark = None, None, None, None
    broken = None
    if pattern is not None:
        try:
            check = verify_sidecar(pattern)
            rec = json.loads(record.sidecar_path(pattern).read_text(encoding="utf-8"))
        except (InputError, ValueError) as exc:  # the record is there, its signature or certificate is not
            broken = str(exc)
    try:
        mark = _sequence_watermark(folder, key) if key is not None else None
    except InputError as exc:  # a tampered frame may no longer decode: the record still gives a verdict
        unreadable = str(exc)
    found = mark is not None and mark.found
    payload_matches = None
    if rec and found:
        payload_matches = rec.get("watermark", {}).get("payload_id") == mark.payload
    mark_text = ("watermark found" if found else "no watermark" if key is not None
                 else "watermark not checked (no key: pass --key or use the workspace)")
    if broken is not None:
        code, summary = EXIT_TAMPERED, f"sequence record present but it cannot be checked: {broken}"
    elif check is not None and (not check["signature"] or check["frames_changed"] or check["frames_missing"]):
        what = ("the signed record's signature does not verify" if not check["signature"] else
                f"{len(check['frames_changed'])} frame(s) changed and {len(check['frames_missing'])} missing "
                "since signing: " + ", ".join((check["frames_changed"] + check["frames_missing"])[:5]))
        code, summary = EXIT_TAMPERED, f"sequence record present but {what}"
    elif unreadable is not None and check is None:
        code, summary = EXIT_UNREADABLE, f"unreadable: {unreadable}"
    elif payload_matches is False:
        code, summary = EXIT_MISMATCH, ("facedouble watermark found, but its payload does not match the sequence "
                                        "record: the record belongs to another render")
    elif check is not None and found:
        code, summary = EXIT_MARKED, ("marked synthetic: signed sequence record valid, every frame intact, "
                                      "watermark found")
    elif check is not None or found:
        record_text = "signed sequence record valid" if check is not None else "no sequence record"
        code, summary = EXIT_PARTIAL, f"marked synthetic, partially: {mark_text}, {record_text}"
    else:
        code, summary = EXIT_NOT_MARKED, ("no provenance found: no signed sequence record, "
                                          + ("no facedouble watermark" if key is not None else mark_text))
    detection = mark.to_dict() if mark is not None else watermark.Detection(False, None, 0, 0, 0.0).to_dict()
    return {
        "file": str(path),
        "verdict": VERDICTS[code],
        "summary": summary,
        "exit_code": code,
        "c2pa": {"status": "absent", "manifests": [],
                 "note": "a sequence's provenance is its signed record (EXR/DPX cannot hold a C2PA manifest)"},
        "watermark": detection | {"matches_record": payload_matches, "checked": key is not None,
                                  "key_id": key.key_id if key is not None else None},
        "render_record": rec,
        "render_record_source": "signed sequence sidecar" if rec else None,
        "sidecar": str(record.sidecar_path(pattern)) if pattern is not None else None,
        "sequence": None if check is None else {"pattern": str(pattern)} | check,
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
    seq = report.get("sequence")
    if seq:
        total = seq["frames_ok"] + len(seq["frames_changed"]) + len(seq["frames_missing"])
        lines.append(f"  sequence:  {seq['pattern']}: signature {'valid' if seq['signature'] else 'INVALID'}, "
                     f"{seq['frames_ok']}/{total} frames intact"
                     + (f", changed {', '.join(seq['frames_changed'][:5])}" if seq["frames_changed"] else "")
                     + (f", missing {', '.join(seq['frames_missing'][:5])}" if seq["frames_missing"] else ""))
    return "\n".join(lines)
