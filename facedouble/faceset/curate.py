"""Sort and filter a faceset by a metric; rejects are moved to a subfolder, never deleted."""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facedouble.errors import FacedoubleError, InputError
from facedouble.faceset.metrics import BY_MAGNITUDE, HIGHER_IS_BETTER, METRICS, _histogram
from facedouble.faceset.store import FACE_SUFFIXES, REJECTS_DIR, Faceset

_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")  # a reason becomes a folder name: nothing that could escape or hide


@dataclasses.dataclass
class SortResult:
    """Faces ordered best first, with their scores, and the ones moved out."""

    metric: str
    ranked: list[tuple[Path, float]]
    rejected: list[Path]


def _context(fs: Faceset, metric: str, reference: np.ndarray | None) -> dict:
    ctx: dict = {}
    if metric == "histogram":
        ctx["mean_histogram"] = np.mean([_histogram(fs.load(p)[0]) for p in fs.paths()], 0)
    if metric == "identity":
        if reference is not None:
            ctx["reference_embedding"] = np.asarray(reference, np.float64)
        else:
            embeddings = [m.embedding for _, m in fs.metas() if m.embedding is not None]
            if not embeddings:
                raise FacedoubleError("faceset has no identity embeddings; give --reference")
            ctx["reference_embedding"] = np.median(embeddings, 0)
    return ctx


def score_faceset(folder: str | Path, metric: str, reference: np.ndarray | None = None,
                  progress: bool = True, on_face: Callable[[int, int], None] | None = None
                  ) -> list[tuple[Path, float]]:
    """(path, value) of every face for `metric`, ordered best first (faces without a value last).

    `reference`: for `identity`, the embedding distances are measured to (None: the set's median). The
    embedding of an image, clip or other faceset comes from the extract stage
    (facedouble.extract.pipeline.reference_embedding; facedouble.api.sort_faceset takes a path).
    `on_face(done, total)` is called after each face (the studio's progress bar).
    """
    if metric not in METRICS:
        raise FacedoubleError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    fs = Faceset(folder)
    ctx = _context(fs, metric, reference)
    fn = METRICS[metric]
    scored = []
    paths = fs.paths()
    for path in tqdm(paths, desc=metric, unit="face", disable=not progress):
        image, meta = fs.load(path)
        value = fn(image, meta, ctx)
        scored.append((path, abs(value) if metric in BY_MAGNITUDE else value))
        if on_face is not None:
            on_face(len(scored), len(paths))
    sign = -1 if HIGHER_IS_BETTER[metric] else 1
    scored.sort(key=lambda pv: (math.isnan(pv[1]), sign * pv[1] if not math.isnan(pv[1]) else 0))
    return scored


def sort_faceset(folder: str | Path, metric: str, *, minimum: float | None = None, maximum: float | None = None,
                 reject_worst: float = 0.0, reference: np.ndarray | None = None, dry_run: bool = False,
                 progress: bool = True) -> SortResult:
    """Rank faces by `metric` and move those outside [minimum, maximum] or in the worst share to _rejected/."""
    if not 0 <= reject_worst < 100:
        raise FacedoubleError("--reject-worst is a percentage in [0, 100)")
    ranked = score_faceset(folder, metric, reference, progress)
    n_worst = int(len(ranked) * reject_worst / 100)
    rejected = [p for i, (p, v) in enumerate(ranked)
                if i >= len(ranked) - n_worst
                or (minimum is not None and not v >= minimum)
                or (maximum is not None and not v <= maximum)]
    if not dry_run and rejected:
        move_to_rejects(folder, [p.name for p in rejected], metric)
    return SortResult(metric, ranked, rejected)


def _face_name(name: str) -> str:
    """`name` if it is a plain face file name (no folder part, no '..'); InputError otherwise."""
    plain = (isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name
             and "\0" not in name and not name.startswith("."))
    if not plain or not name.lower().endswith(FACE_SUFFIXES):
        raise InputError(f"not a plain face file name: {name!r}")
    return name


def _move_all(moves: list[tuple[Path, Path]]) -> list[Path]:
    """Check every move first (sources exist, no destination taken, no name twice), then do them all."""
    seen: set[Path] = set()
    for src, dst in moves:
        if not src.is_file():
            raise InputError(f"no face {src.name!r} in {src.parent}")
        if dst in seen or dst.exists():
            raise FacedoubleError(f"{dst} already exists; refusing to overwrite it")
        seen.add(dst)
    for src, dst in moves:
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)  # same filesystem: atomic, nothing lost
    return [dst for _, dst in moves]


def move_to_rejects(faceset: str | Path, names: Iterable[str], reason: str) -> list[Path]:
    """Move faces `names` (plain file names in `faceset`) to `<faceset>/_rejected/<reason>/`; never deletes.

    `reason` is a slug (the metric for `faceset sort`, "manual" in the studio). All names are checked before
    any file moves, and an existing file of the same name in the rejects folder is never overwritten.
    Returns the new paths.
    """
    folder = Faceset(faceset).folder  # validates the folder
    if not isinstance(reason, str) or not _SLUG.fullmatch(reason):
        raise InputError(f"reject reason must be a short lowercase slug, not {reason!r}")
    target = folder / REJECTS_DIR / reason
    return _move_all([(folder / n, target / n) for n in map(_face_name, names)])


def restore_rejects(faceset: str | Path, names: Iterable[str], reason: str | None = None) -> list[Path]:
    """Move rejected faces `names` (plain file names) from `_rejected/<reason>/` back into `faceset`.

    Without `reason` each name is looked up in every reason folder and must be in exactly one. Refuses to
    overwrite a face already in the faceset. Returns the restored paths.
    """
    folder = Faceset(faceset).folder
    base = folder / REJECTS_DIR
    # any existing plain folder name, not only a slug: faces in a hand-made _rejected/<Folder>/ still come back
    if reason is not None and (not isinstance(reason, str) or reason in ("", ".", "..") or "/" in reason
                               or "\\" in reason or "\0" in reason):
        raise InputError(f"not a plain reject folder name: {reason!r}")
    reasons = [reason] if reason is not None else (
        sorted(d.name for d in base.iterdir() if d.is_dir()) if base.is_dir() else [])
    moves = []
    for name in map(_face_name, names):
        found = [base / r / name for r in reasons if (base / r / name).is_file()]
        if len(found) != 1:
            where = f"{REJECTS_DIR}/{reason}/" if reason is not None else f"{REJECTS_DIR}/"
            raise InputError(f"no rejected face {name!r} in {where}" if not found else
                             f"{name!r} is rejected under several reasons; say which")
        moves.append((found[0], folder / name))
    return _move_all(moves)


def faceset_stats(folder: str | Path) -> dict:
    """Counts and metric percentiles of a faceset."""
    fs = Faceset(folder)
    metas = fs.metas()
    if not metas:
        raise FacedoubleError(f"faceset {folder} has no faces")
    out: dict = {
        "faces": len(metas),
        "sources": sorted({m.source for _, m in metas}),
        "tracks": len({(m.source, m.track_id) for _, m in metas}),
        "face_types": sorted({m.face_type for _, m in metas}),
        "sizes": sorted({m.size for _, m in metas}),
        "interpolated": sum(m.interpolated for _, m in metas),
        "with_embedding": sum(m.embedding is not None for _, m in metas),
    }
    for metric in ("blur", "yaw", "pitch", "brightness"):
        values = np.array([v for _, v in score_faceset(folder, metric, progress=False)])
        out[metric] = {q: round(float(np.percentile(values, p)), 2) for q, p in
                       (("min", 0), ("p5", 5), ("median", 50), ("p95", 95), ("max", 100))}
    return out
