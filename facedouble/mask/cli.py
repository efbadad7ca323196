"""`facedouble mask label import|export`: move hand-drawn mask labels between a faceset and one JSON file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from facedouble.errors import InputError
from facedouble.faceset.store import Faceset
from facedouble.io.atomic import atomic_write_json
from facedouble.mask.labels import FaceLabels, write_labels

FORMAT = "facedouble.labels"
MAX_FILE_BYTES = 256_000_000


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `mask` command group."""
    p = subparsers.add_parser("mask", help="occlusion-aware masks: hand-drawn labels",
                              description="Mask labels are include/exclude polygons in aligned-face pixels, "
                              "stored inside each face image, so they move with the file.")
    sub = p.add_subparsers(dest="mask_command", metavar="SUBCOMMAND", required=True)
    label = sub.add_parser("label", help="import or export labels as JSON")
    lsub = label.add_subparsers(dest="label_command", metavar="ACTION", required=True)
    e = lsub.add_parser("export", help="write every labelled face's labels to FILE.json")
    e.add_argument("faceset")
    e.add_argument("file")
    e.set_defaults(func=run_export)
    i = lsub.add_parser("import", help="store labels from FILE.json in the faces (all validated first)",
                        description='FILE.json: {"format": "facedouble.labels", "faces": {"<face file name>": '
                        '{"include": [[[x, y], ...], ...], "exclude": [...]} or null to clear}}.')
    i.add_argument("faceset")
    i.add_argument("file")
    i.set_defaults(func=run_import)


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
    by_name = {p.name: p for p in fs.paths()}
    unknown = sorted(set(raw["faces"]) - set(by_name))
    if unknown:
        more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        raise InputError(f"{file}: unknown face(s) {', '.join(unknown[:3])}{more} (not in {fs.folder})")
    planned: list[tuple[Path, FaceLabels | None]] = []
    for name, entry in raw["faces"].items():  # validate everything before the first write
        path = by_name[name]
        try:
            labels = None if entry is None else FaceLabels.from_dict(entry, size=fs.meta(path).size)
        except InputError as exc:
            raise InputError(f"{file}: face {name}: {exc}") from None
        planned.append((path, labels))
    for path, labels in planned:
        write_labels(path, labels)
    return len(planned)


def run_export(args: argparse.Namespace) -> int:
    """CLI: export."""
    n = export_labels(args.faceset, args.file)
    print(f"exported labels of {n} face(s) to {args.file}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    """CLI: import."""
    n = import_labels(args.faceset, args.file)
    print(f"imported labels into {n} face(s)")
    return 0
