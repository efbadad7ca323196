"""Faceset gallery: paged listing, cached thumbnails, reject/restore moves.

Rejects land where `faceset sort` puts them (`<faceset>/_rejected/<reason>/`, never deleted): both go through
facedouble.faceset.curate.move_to_rejects/restore_rejects, so the CLI and the studio agree on what a rejected
face is.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facedouble.errors import FacedoubleError, InputError
from facedouble.faceset.curate import move_to_rejects, restore_rejects, score_faceset
from facedouble.faceset.metrics import METRICS
from facedouble.faceset.store import FACE_SUFFIXES, REJECTS_DIR, Faceset
from facedouble.io.atomic import atomic_write_bytes
from facedouble.studio.paths import STUDIO_DIR

THUMB_SIZE = 128
PANEL_SIZE = 256
MAX_LIMIT = 500
OVERLAYS = ("mask", "landmarks")  # drawn in this order: the mask under the landmarks
MANUAL_REASON = "manual"  # the _rejected/ subfolder for faces rejected by hand (sort uses the metric name)

SCORE_POLL_S = 0.5  # how soon the page asks again while a metric is being scored


@dataclasses.dataclass
class _Scoring:
    """One metric scored over one faceset listing, in the scoring thread."""

    names: frozenset[str]  # the faces being (or that were) scored
    total: int
    done: int = 0
    error: str | None = None
    scores: dict[str, float] | None = None  # name -> value, best first; None until finished


_scorings: dict[tuple[str, str], _Scoring] = {}  # (folder, metric) -> the newest scoring
_lock = threading.Lock()
# One thread scores, one metric at a time: a first sort of 10,000 faces reads and measures every one of them
# (a minute or more on 2 cores), which must never hold up the requests the server answers meanwhile.
_scorer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="studio-score")


def _names(folder: Path) -> list[str]:
    # os.scandir, not Faceset.paths(): 10,000 Path objects and their sort cost more than the page itself
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if e.name.lower().endswith(FACE_SUFFIXES) and not e.name.startswith("."))


def _score(folder: Path, metric: str, job: _Scoring) -> None:
    def tick(done: int, total: int) -> None:
        job.done, job.total = done, total

    try:
        ranked = score_faceset(folder, metric, progress=False, on_face=tick)
        job.scores = {p.name: v for p, v in ranked}  # in score_faceset's order: best first
    except FacedoubleError as exc:
        job.error = str(exc)
    except Exception as exc:  # noqa: BLE001 - an unreadable face: the page reports it instead of waiting forever
        job.error = f"scoring {metric} failed: {type(exc).__name__}: {exc}"


def metric_scores(folder: Path, metric: str, names: list[str]) -> tuple[dict[str, float] | None, dict | None]:
    """(scores, None) once `metric` is scored for these faces, else (None, progress) with the scoring started.

    Scores are kept per faceset while its faces are a subset of the scored ones (rejecting faces keeps the
    order; the set-wide metrics, histogram and identity, keep the reference of the scored set until a face
    is added). Progress: {"metric", "done", "total"}. InputError when the scoring failed (asked again: retried).
    """
    key = (str(folder), metric)
    wanted = set(names)
    with _lock:
        job = _scorings.get(key)
        if job is not None and job.error is not None:
            del _scorings[key]
            raise InputError(job.error)
        if job is not None and wanted <= job.names:
            if job.scores is not None:
                return job.scores, None
        else:
            job = _Scoring(frozenset(wanted), len(wanted))
            _scorings[key] = job
            _scorer.submit(_score, folder, metric, job)
        return None, {"metric": metric, "done": job.done, "total": job.total}


def page(folder: Path, offset: int = 0, limit: int = 100, sort: str | None = None, rejected: bool = False) -> dict:
    """One page of faces: names (relative to the faceset) in order, with the metric value when sorted.

    Sorting by a metric not scored yet starts the scoring in the background and answers at once, in name
    order, with `scoring` ({"metric", "done", "total"}, `sort` None): ask again until it is gone.
    """
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
    scoring = None
    if sort:
        if sort not in METRICS:
            raise InputError(f"unknown metric {sort!r}; choose from {', '.join(METRICS)}")
        scores, scoring = metric_scores(folder, sort, names)
        if scores is None:
            sort = None
        else:
            values = scores
            order = {n: i for i, n in enumerate(values)}  # score_faceset returns best first
            names.sort(key=lambda n: order.get(n, math.inf))
    faces = [{"name": n, **({"value": _finite(values.get(n))} if sort else {})} for n in names[offset:offset + limit]]
    return {"total": len(names), "offset": offset, "limit": limit, "sort": sort, "faces": faces,
            "metrics": list(METRICS), "scoring": scoring, "poll_s": SCORE_POLL_S if scoring else None}


def _finite(v: float | None) -> float | None:
    return None if v is None or math.isnan(v) else round(float(v), 4)


def overlays_of(text: str | None) -> tuple[str, ...]:
    """The overlay names of a request ("landmarks,mask"), checked and in a fixed order."""
    names = {n for n in (text or "").split(",") if n}
    unknown = names - set(OVERLAYS)
    if unknown:
        raise InputError(f"unknown overlay {sorted(unknown)[0]!r} (choose from {', '.join(OVERLAYS)})")
    return tuple(n for n in OVERLAYS if n in names)


def thumbnail(workspace: Path, face: Path, overlays: tuple[str, ...] = (), size: int = THUMB_SIZE) -> bytes:
    """JPEG thumbnail of a face image, made once into WORKSPACE/.studio/thumbs (keyed by path, mtime, size and
    overlays): `overlays` draws the face's landmarks and/or its mask (see `draw_overlays`); `size` is
    THUMB_SIZE (the grid) or PANEL_SIZE (the face panel)."""
    if size not in (THUMB_SIZE, PANEL_SIZE):
        raise InputError(f"thumbnail size must be {THUMB_SIZE} or {PANEL_SIZE}")
    st = face.stat()
    key = hashlib.sha256(f"{face}|{st.st_mtime_ns}|{st.st_size}|{size}|{overlays}".encode()).hexdigest()[:32]
    cached = workspace / STUDIO_DIR / "thumbs" / key[:2] / f"{key}.jpg"
    if cached.is_file():
        return cached.read_bytes()
    if overlays:
        from facedouble.faceset.meta import read_face

        rgb, meta = read_face(face)
        im = Image.fromarray(draw_overlays(rgb, meta, overlays, size))
    else:
        with Image.open(face) as opened:
            im = opened.convert("RGB")
            im.thumbnail((size, size))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85)
    data = buf.getvalue()
    atomic_write_bytes(cached, data)
    return data


# the 68-point layout (iBUG 300-W): jaw, brows, nose bridge, nostrils, eyes, lips; closed runs loop back
_RUNS = ((0, 17, False), (17, 22, False), (22, 27, False), (27, 31, False), (31, 36, False), (36, 42, True),
         (42, 48, True), (48, 60, True), (60, 68, True))


def draw_overlays(rgb: np.ndarray, meta: Any, overlays: tuple[str, ...], size: int) -> np.ndarray:
    """The face scaled to `size` with its overlays, as RGB uint8.

    mask: the mask the face carries, as merge and training see it: the predicted mask (`mask apply`,
    green tint) when there is one, else the landmark hull (merge's default `hull`, blue tint); hand-drawn
    labels on top as outlines (include green, exclude red). landmarks: the 68 aligned points joined as
    jaw, brows, nose, eyes and lips (yellow).
    """
    import cv2

    side = rgb.shape[0]
    scale = size / side
    out = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out = out.astype(np.float32)
    if "mask" in overlays:
        from facedouble.faceset.xseg import decode_mask
        from facedouble.merge.masks import hull_mask

        if meta.xseg is not None:
            mask, tint = decode_mask(meta.xseg), (40.0, 220.0, 90.0)
        else:
            mask, tint = hull_mask(np.asarray(meta.aligned_landmarks), side), (60.0, 140.0, 255.0)
        mask = cv2.resize(np.asarray(mask, np.float32), (size, size), interpolation=cv2.INTER_LINEAR)[..., None]
        out = out * (1 - 0.35 * mask) + np.array(tint, np.float32) * (0.35 * mask)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if "mask" in overlays and meta.labels is not None:
        for polys, colour in ((meta.labels.include, (40, 255, 90)), (meta.labels.exclude, (255, 60, 60))):
            for poly in polys:
                pts = np.round(np.asarray(poly, np.float64) * scale * 16).astype(np.int32).reshape(-1, 1, 2)
                cv2.polylines(out, [pts], True, colour, 1, cv2.LINE_AA, shift=4)
    if "landmarks" in overlays and meta.aligned_landmarks is not None:
        pts = np.asarray(meta.aligned_landmarks, np.float64) * scale
        if len(pts) == 68:
            for a, b, closed in _RUNS:
                run = np.round(pts[a:b] * 16).astype(np.int32).reshape(-1, 1, 2)
                cv2.polylines(out, [run], closed, (255, 220, 40), 1, cv2.LINE_AA, shift=4)
        for x, y in pts:
            cv2.circle(out, (round(x * 16), round(y * 16)), 16, (255, 220, 40), -1, cv2.LINE_AA, shift=4)
    return out


def source_frame(workspace: Path, face: Path, max_side: int = 960) -> tuple[bytes, dict[str, Any]]:
    """The source frame a face was cut from, with its box drawn, as JPEG, and where it came from.

    The clip is the face's `source` when that lies inside the workspace, else the workspace clip of the same
    file name (`clips/<name>`: a faceset extracted elsewhere); nothing outside the workspace is read.
    Frames come from the scrubber (facedouble.studio.frames): stepping through a clip's faces reuses its
    decoder.
    """
    import cv2

    from facedouble.faceset.meta import read_meta
    from facedouble.studio.frames import scrubber
    from facedouble.studio.paths import inside
    from facedouble.studio.workspace import CLIP_SUFFIXES

    meta = read_meta(face)
    root = workspace.resolve()
    source = Path(meta.source)
    candidates = [source] if source.is_absolute() else [root / source]
    candidates.append(root / "clips" / source.name)
    clip = None
    for candidate in candidates:
        try:
            real = inside(root, candidate.resolve().relative_to(root).as_posix())
        except (ValueError, InputError):
            continue
        if real.is_file() and real.name.lower().endswith(CLIP_SUFFIXES):
            clip = real
            break
    if clip is None:
        raise InputError(f"the source of this face ({source.name}) is not in the workspace: add the clip to clips/")
    frame = scrubber(clip).frame(int(meta.frame_index))
    image = frame.image.copy()  # the scrubber's frames are shared and read-only
    quad = cv2.transform(np.array([[[0, 0]], [[meta.size, 0]], [[meta.size, meta.size]], [[0, meta.size]]],
                                  np.float64), np.asarray(meta.inverse, np.float64))
    cv2.polylines(image, [np.round(quad).astype(np.int32)], True, (255, 220, 40), max(2, image.shape[1] // 400),
                  cv2.LINE_AA)
    h, w = image.shape[:2]
    if max(h, w) > max_side:
        k = max_side / max(h, w)
        image = cv2.resize(image, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=88)
    return buf.getvalue(), {"clip": clip.relative_to(root).as_posix(), "frame": int(meta.frame_index)}


def face_info(face: Path) -> dict[str, Any]:
    """What the gallery's face panel shows: where the face comes from and what it carries."""
    from facedouble.faceset.meta import read_meta

    meta = read_meta(face)
    return {"source": Path(meta.source).name, "frame": int(meta.frame_index), "timestamp": float(meta.timestamp),
            "track": int(meta.track_id), "face_type": meta.face_type, "size": int(meta.size),
            "detector": meta.detector, "score": round(float(meta.score), 4), "interpolated": bool(meta.interpolated),
            "labelled": meta.labels is not None, "predicted": meta.xseg is not None}


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
