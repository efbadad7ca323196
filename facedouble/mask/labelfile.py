"""The label exchange file: every hand-drawn mask label of a faceset in one JSON file, out and back in.

    {"format": "facedouble.labels", "version": 1, "faces": {"<face file name>": {"include": [...],
     "exclude": [...]} or null to clear}}

Import validates every entry against its face before the first write, so a bad file changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from facedouble.errors import InputError
from facedouble.faceset.labels import FaceLabels
from facedouble.faceset.meta import write_labels
from facedouble.faceset.store import Faceset
from facedouble.io.atomic import atomic_write_json

FORMAT = "facedouble.labels"
MAX_FILE_BYTES = 256_000_000


def export_labels(faceset: str | Path, file: str | Path) -> int:
    """Write {face name: labels} for every labelled face; returns how many."""
    faces = {p.name: m.labels.to_dict() for p, m in Faceset(faceset).metas() if m.labels is not None}
    atomic_write_json(file, {"format": FORMAT, "version": 1, "faces": faces})
    return len(faces)


def import_labels(faceset: str | Path, file: str | Path) -> int:
    """Validate every entry of `file` against its face, then write them all; returns how many faces changed."""
    fs = Faceset(faceset)
    file = Path(file)
    try:
        if file.stat().st_size > MAX_FILE_BYTES:
            raise InputError(f"{file}: label file is oversized")
        raw: Any = json.loads(file.read_text("utf-8"))
    except FileNotFoundError:
        raise InputError(f"label file not found: {file}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{file}: not valid JSON ({getattr(exc, 'msg', exc)})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT or not isinstance(raw.get("faces"), dict):
        raise InputError(f'{file}: not a label file (expected {{"format": "{FORMAT}", "faces": {{...}}}})')
    return apply_labels(fs, raw["faces"], str(file))


def apply_labels(faceset: str | Path | Faceset, faces: dict[str, Any], source: str) -> int:
    """Validate every {face name: labels or None} entry against its face, then write them all; returns how many
    faces changed. `source` names where the entries came from in the errors (the label file)."""
    fs = faceset if isinstance(faceset, Faceset) else Faceset(faceset)
    by_name = {p.name: p for p in fs.paths()}
    unknown = sorted(set(faces) - set(by_name))
    if unknown:
        more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        raise InputError(f"{source}: unknown face(s) {', '.join(unknown[:3])}{more} (not in {fs.folder})")
    planned: list[tuple[Path, FaceLabels | None]] = []
    for name, entry in faces.items():  # validate everything before the first write
        path = by_name[name]
        try:
            labels = None if entry is None else FaceLabels.from_dict(entry, size=fs.meta(path).size)
        except InputError as exc:
            raise InputError(f"{source}: face {name}: {exc}") from None
        planned.append((path, labels))
    for path, labels in planned:
        write_labels(path, labels)
    return len(planned)
