"""Render record: one JSON per render saying what was made, from what, with whose consent, how it is marked.

It is written beside the output (`<output>.render.json`) and embedded in it: a PNG/JPEG text entry through
the image-metadata codec, or MP4 container metadata (key RECORD_KEY) set when merge opens the output.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from facedouble import __version__
from facedouble.consent.records import ConsentRecord
from facedouble.errors import InputError
from facedouble.io import imagemeta
from facedouble.io.atomic import atomic_write_bytes, atomic_write_json
from facedouble.io.digest import sha256_file

RECORD_KEY = "facedouble.render"
# MP4 'comment' survives mov/mp4 muxing in FFmpeg; custom keys need movflags=use_metadata_tags, set below
MP4_COMMENT_KEY = "comment"
STATEMENT = ("This media contains synthetic content: a face was replaced using a trained model "
             "(facedouble). It is not a recording of real events.")


def build_record(*, model_hash: str, consent: ConsentRecord | dict[str, Any], target: Path,
                 settings: dict[str, Any], payload_id: int, output_name: str = "",
                 watermark_key_id: str | None = None) -> dict[str, Any]:
    """The render record as a plain dict (JSON-serialisable)."""
    consent_dict = consent.to_dict() if isinstance(consent, ConsentRecord) else dict(consent)
    consent_hash = consent.record_hash if isinstance(consent, ConsentRecord) else consent_dict.get("record_hash")
    target = Path(target)
    return {
        "version": 1,
        "statement": STATEMENT,
        "synthetic": True,
        "tool": {"name": "facedouble", "version": __version__},
        "model_sha256": model_hash,
        "identity": {"name": consent_dict.get("name"), "consent_record_sha256": consent_hash,
                     "release_sha256": consent_dict.get("release_sha256")},
        "target": {"name": target.name, "sha256": sha256_file(target) if target.is_file() else None},
        "settings": settings,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "watermark": {"scheme": "qim-face-8x8-crc16-keyed", "payload_id": int(payload_id),
                      "key_id": watermark_key_id},
        "output": output_name,
    }


def sidecar_path(output: Path) -> Path:
    """Where the record is written beside an output."""
    output = Path(output)
    return output.with_name(output.name + ".render.json")


def write_sidecar(output: Path, record: dict[str, Any]) -> Path:
    """Write the record beside `output` (atomic)."""
    path = sidecar_path(output)
    atomic_write_json(path, record)
    return path


def mp4_metadata(record: dict[str, Any]) -> dict[str, str]:
    """Container metadata for the merge engineer to set on the output MP4 before writing frames:

        container = av.open(out, "w", options={"movflags": "use_metadata_tags"})
        container.metadata.update(mp4_metadata(record))
    """
    text = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return {RECORD_KEY: text, MP4_COMMENT_KEY: text}


def embed_in_image(path: Path, record: dict[str, Any]) -> None:
    """Embed the record in a PNG/JPEG as a text entry (atomic rewrite)."""
    path = Path(path)
    data = imagemeta.set_text(path.read_bytes(), RECORD_KEY, json.dumps(record, sort_keys=True))
    atomic_write_bytes(path, data)


def read_embedded(path: Path) -> dict[str, Any] | None:
    """The render record embedded in an image or video, or None."""
    path = Path(path)
    head = path.read_bytes()[:8] if path.is_file() else b""
    try:
        if head.startswith(imagemeta.PNG_SIGNATURE) or head.startswith(imagemeta.JPEG_SOI):
            text = imagemeta.get_text(path.read_bytes(), RECORD_KEY)
        else:
            import av

            with av.open(str(path)) as container:
                meta = dict(container.metadata)
            text = meta.get(RECORD_KEY) or meta.get(MP4_COMMENT_KEY)
        return json.loads(text) if text else None
    except (ValueError, OSError) as exc:
        raise InputError(f"cannot read render record from {path}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - av errors: the file is not a readable container
        raise InputError(f"cannot read {path}: {exc}") from None
