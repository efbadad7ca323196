"""Provenance of image-sequence renders (EXR, DPX, 16-bit PNG/TIFF; facedouble.merge.seqwriters).

Every frame carries the invisible watermark in its pixels (it is embedded before the frame is written)
and a "synthetic media" note in its header. After the last frame:

* the render record is written beside the sequence (`shot.%04d.exr.render.json`), with the SHA-256 of
  every frame, so the record names exactly the frames it covers;
* PNG frames also carry the record inside (a text chunk) and every PNG and TIFF frame is C2PA-signed,
  embedded, like merge's PNG output;
* EXR and DPX frames cannot hold a C2PA manifest: c2pa-python 0.38.1 has no EXR or DPX format (see
  `c2pa.Builder.get_supported_mime_types()`). For them the sidecar record is the manifest, and it is
  signed with the render's signing key and certificate: `.render.json.sig` (a detached signature over the
  sidecar's bytes, ECDSA/RSA-PSS/Ed25519 by key type, the algorithm C2PA would use) and the certificate
  chain beside it (`.render.json.pem`). `verify_sidecar` checks both.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from facedouble.errors import InputError
from facedouble.io.atomic import atomic_write_bytes, atomic_write_json
from facedouble.io.digest import sha256_file
from facedouble.trust import c2pa_sign, keyalg, record

EMBEDDABLE = (".png", ".tif", ".tiff")  # C2PA-signed in the file itself


def sequence_frames(pattern: Path) -> list[Path]:
    """The frames on disk that match `pattern` (`shot.%04d.exr` or `shot.####.exr`), in frame order."""
    name = pattern.name
    regex = re.escape(name)
    regex = re.sub(r"%0?\\?(\d*)d", r"(\\d+)", regex.replace(r"\%", "%"))
    regex = re.sub(r"(\\#)+", r"(\\d+)", regex)
    found = []
    if pattern.parent.is_dir():
        matcher = re.compile(f"^{regex}$")
        for path in pattern.parent.iterdir():
            m = matcher.match(path.name)
            if m and path.is_file():
                found.append((int(m.group(1)), path))
    return [p for _, p in sorted(found)]


def sidecar_for(pattern: Path) -> Path:
    """The sequence's record sidecar."""
    return record.sidecar_path(pattern)


def finalize_sequence(pattern: Path, rec: dict[str, Any], clip: Path, cert: Path, key: Path) -> list[Path]:
    """Record (with every frame's SHA-256) beside the sequence, signed; PNG/TIFF frames C2PA-signed in place.

    Returns the frames signed in place. Signing is the last step: frames are hashed after it.
    """
    frames = sequence_frames(Path(pattern))
    parent = clip if Path(clip).is_file() else None  # a plate sequence (a folder) has no single parent file
    signed = []
    for path in frames:
        if path.suffix.lower() == ".png":
            record.embed_in_image(path, rec)
        if path.suffix.lower() in EMBEDDABLE:
            c2pa_sign.sign_file(path, rec, parent, cert, key)
            signed.append(path)
    sidecar = sidecar_for(Path(pattern))
    atomic_write_json(sidecar, rec | {"sequence": {"pattern": Path(pattern).name, "frames": {
        p.name: sha256_file(p) for p in frames}, "c2pa": "embedded in each frame" if signed else
        "none (EXR/DPX cannot hold a C2PA manifest): this record is signed in .sig, chain in .pem"}})
    _sign_detached(sidecar, cert, key)
    return signed


def _sign_detached(path: Path, cert: Path, key: Path) -> None:
    """`path`.sig (signature over its bytes) and `path`.pem (the signer's certificate chain)."""
    try:
        private = keyalg.load_private_key(Path(key).read_bytes())
    except OSError as exc:
        raise InputError(f"cannot read signing key {key}: {exc}") from None
    atomic_write_bytes(path.with_name(path.name + ".sig"), keyalg.sign(private, path.read_bytes()))
    shutil.copyfile(cert, path.with_name(path.name + ".pem"))


def verify_sidecar(pattern: Path) -> dict[str, Any]:
    """Check a sequence's signed record: signature, and every frame's hash. Returns
    {"signature": bool, "frames_ok": int, "frames_changed": [names], "frames_missing": [names]}."""
    from cryptography import x509

    sidecar = sidecar_for(Path(pattern))
    try:
        data = sidecar.read_bytes()
        signature = sidecar.with_name(sidecar.name + ".sig").read_bytes()
        cert = x509.load_pem_x509_certificates(sidecar.with_name(sidecar.name + ".pem").read_bytes())[0]
        rec = json.loads(data)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the signed record of {pattern}: {exc}") from None
    good = keyalg.verify(cert.public_key(), signature, data)
    frames = rec.get("sequence", {}).get("frames", {})
    folder = Path(pattern).parent
    missing = [n for n in frames if not (folder / n).is_file()]
    changed = [n for n, h in frames.items() if n not in missing and sha256_file(folder / n) != h]
    return {"signature": good, "frames_ok": len(frames) - len(missing) - len(changed), "frames_changed": changed,
            "frames_missing": missing}


def find_sequence_record(path: Path) -> Path | None:
    """The pattern (`folder/shot.%04d.exr`) of the signed sequence that `path` (a sequence folder or one of its
    frames) belongs to, found through its record sidecar; None when there is none."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    if not folder.is_dir():
        return None
    suffix = ".render.json"
    for sidecar in sorted(folder.glob("*" + suffix)):
        pattern = folder / sidecar.name[:-len(suffix)]
        if not re.search(r"%0?\d*d|#+", pattern.name):
            continue  # a single file's record (render.mp4.render.json), not a sequence's
        frames = sequence_frames(pattern)
        if (path.is_dir() and frames) or path.name in {f.name for f in frames}:
            return pattern
    return None
