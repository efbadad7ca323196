"""Faceset gallery: paged listing, cached thumbnails, reject/restore moves.

Rejects land where `faceset sort` puts them (`<faceset>/_rejected/<reason>/`, never deleted): both go through
facedouble.faceset.curate.move_to_rejects/restore_rejects, so the CLI and the studio agree on what a rejected
face is.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import threading
from pathlib import Path

from PIL import Image

from facedouble.errors import InputError
from facedouble.faceset.curate import move_to_rejects, restore_rejects, score_faceset
from facedouble.faceset.metrics import METRICS
from facedouble.faceset.store import FACE_SUFFIXES, REJECTS_DIR, Faceset
from facedouble.io.atomic import atomic_write_bytes
from facedouble.studio.paths import STUDIO_DIR

THUMB_SIZE = 128
MAX_LIMIT = 500
MANUAL_REASON = "manual"  # the _rejected/ subfolder for faces rejected by hand (sort uses the metric name)

_scores: dict[tuple[str, str], tuple[tuple, dict[str, float]]] = {}  # (folder, metric) -> (listing key, scores)
_lock = threading.Lock()


def _names(folder: Path) -> list[str]:
    # os.scandir, not Faceset.paths(): 10,000 Path objects and their sort cost more than the page itself
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if e.name.lower().endswith(FACE_SUFFIXES) and not e.name.startswith("."))


def _metric_scores(folder: Path, metric: str, names: list[str]) -> dict[str, float]:
    """Scores of `metric`, computed once per faceset content (rejects and new faces invalidate it)."""
    key = (str(folder), metric)
    listing = (len(names), hash(tuple(names)))
    with _lock:
        hit = _scores.get(key)
        if hit and hit[0] == listing:
            return hit[1]
    scores = {p.name: v for p, v in score_faceset(folder, metric, progress=False)}
    with _lock:
        _scores[key] = (listing, scores)
    return scores


def page(folder: Path, offset: int = 0, limit: int = 100, sort: str | None = None, rejected: bool = False) -> dict:
    """One page of faces: names (relative to the faceset) in order, with the metric value when sorted."""
    if offset < 0 or not 0 < limit <= MAX_LIMIT:
        raise InputError(f"offset must be >= 0 and limit in 1..{MAX_LIMIT}")
    if rejected:
        base = folder / REJECTS_DIR
        names = sorted(f"{REJECTS_DIR}/{d.name}/{n}" for d in base.iterdir() if d.is_dir()
                       for n in _names(d)) if base.is_dir() else []
        sort = None
    else:
        names = _names(folder)
    values: dict[str, float] = {}
    if sort:
        if sort not in METRICS:
            raise InputError(f"unknown metric {sort!r}; choose from {', '.join(METRICS)}")
        values = _metric_scores(folder, sort, names)
        order = {n: i for i, n in enumerate(values)}  # score_faceset returns best first
        names.sort(key=lambda n: order.get(n, math.inf))
    faces = [{"name": n, **({"value": _finite(values.get(n))} if sort else {})} for n in names[offset:offset + limit]]
    return {"total": len(names), "offset": offset, "limit": limit, "sort": sort, "faces": faces,
            "metrics": list(METRICS)}


def _finite(v: float | None) -> float | None:
    return None if v is None or math.isnan(v) else round(float(v), 4)


def thumbnail(workspace: Path, face: Path) -> bytes:
    """JPEG thumbnail of a face image, made once into WORKSPACE/.studio/thumbs (keyed by path, mtime, size)."""
    st = face.stat()
    key = hashlib.sha256(f"{face}|{st.st_mtime_ns}|{st.st_size}|{THUMB_SIZE}".encode()).hexdigest()[:32]
    cached = workspace / STUDIO_DIR / "thumbs" / key[:2] / f"{key}.jpg"
    if cached.is_file():
        return cached.read_bytes()
    with Image.open(face) as im:
        im = im.convert("RGB")
        im.thumbnail((THUMB_SIZE, THUMB_SIZE))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=85)
    data = buf.getvalue()
    atomic_write_bytes(cached, data)
    return data


def face_file(folder: Path, name: str) -> Path:
    """The file of face `name` (as listed by `page`) inside `folder`; InputError if it is not a face there."""
    parts = Path(name).parts
    ok = (len(parts) == 1 or (len(parts) == 3 and parts[0] == REJECTS_DIR)) and ".." not in parts
    path = folder.joinpath(*parts)
    if not ok or not name.lower().endswith(FACE_SUFFIXES) or not path.is_file():
        raise InputError(f"no face {name!r} in this faceset")
    return path


def reject(folder: Path, names: list[str], reason: str = MANUAL_REASON) -> list[str]:
    """Move faces to `_rejected/<reason>/` (same filesystem: atomic); returns their new names."""
    Faceset(folder)  # validates the folder
    plain = []
    for name in names:
        src = face_file(folder, name)
        if src.parent != folder:
            raise InputError(f"face {name!r} is already rejected")
        plain.append(src.name)
    return [_listed(folder, p) for p in move_to_rejects(folder, plain, reason)]


def restore(folder: Path, names: list[str]) -> list[str]:
    """Move rejected faces (`_rejected/<reason>/<file>`) back into the faceset; refuses to overwrite."""
    restored = []
    for name in names:
        src = face_file(folder, name)
        if src.parent.parent != folder / REJECTS_DIR:
            raise InputError(f"face {name!r} is not rejected")
        # one at a time: each name carries its own reason folder
        restored += [_listed(folder, p) for p in restore_rejects(folder, [src.name], reason=src.parent.name)]
    return restored


def _listed(folder: Path, path: Path) -> str:
    """`path` as `page` lists it: relative to the faceset, with forward slashes."""
    return path.relative_to(folder).as_posix()
