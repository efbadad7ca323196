"""Sort and filter a faceset by a metric; rejects are moved to a subfolder, never deleted."""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facedouble.errors import FacedoubleError
from facedouble.faceset.metrics import BY_MAGNITUDE, HIGHER_IS_BETTER, METRICS, _histogram
from facedouble.faceset.store import REJECTS_DIR, Faceset


@dataclasses.dataclass
class SortResult:
    """Faces ordered best first, with their scores, and the ones moved out."""

    metric: str
    ranked: list[tuple[Path, float]]
    rejected: list[Path]


def _context(fs: Faceset, metric: str, reference: str | None) -> dict:
    ctx: dict = {}
    if metric == "histogram":
        ctx["mean_histogram"] = np.mean([_histogram(fs.load(p)[0]) for p in fs.paths()], 0)
    if metric == "identity":
        if reference:
            from facedouble.extract.identity import IdentityEmbedder
            from facedouble.extract.pipeline import reference_embedding

            ctx["reference_embedding"] = reference_embedding(reference, IdentityEmbedder())
        else:
            embeddings = [m.embedding for _, m in fs.metas() if m.embedding is not None]
            if not embeddings:
                raise FacedoubleError("faceset has no identity embeddings; give --reference")
            ctx["reference_embedding"] = np.median(embeddings, 0)
    return ctx


def score_faceset(folder: str | Path, metric: str, reference: str | None = None,
                  progress: bool = True) -> list[tuple[Path, float]]:
    """(path, value) of every face for `metric`, ordered best first (faces without a value last)."""
    if metric not in METRICS:
        raise FacedoubleError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    fs = Faceset(folder)
    ctx = _context(fs, metric, reference)
    fn = METRICS[metric]
    scored = []
    for path in tqdm(fs.paths(), desc=metric, unit="face", disable=not progress):
        image, meta = fs.load(path)
        value = fn(image, meta, ctx)
        scored.append((path, abs(value) if metric in BY_MAGNITUDE else value))
    sign = -1 if HIGHER_IS_BETTER[metric] else 1
    scored.sort(key=lambda pv: (math.isnan(pv[1]), sign * pv[1] if not math.isnan(pv[1]) else 0))
    return scored


def sort_faceset(folder: str | Path, metric: str, *, minimum: float | None = None, maximum: float | None = None,
                 reject_worst: float = 0.0, reference: str | None = None, dry_run: bool = False,
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
        target = Path(folder) / REJECTS_DIR / metric
        target.mkdir(parents=True, exist_ok=True)
        for path in rejected:
            os.replace(path, target / path.name)  # same filesystem: atomic, nothing lost
    return SortResult(metric, ranked, rejected)


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
        "identity": sorted({m.identity for _, m in metas if m.identity}),
    }
    for metric in ("blur", "yaw", "pitch", "brightness"):
        values = np.array([v for _, v in score_faceset(folder, metric, progress=False)])
        out[metric] = {q: round(float(np.percentile(values, p)), 2) for q, p in
                       (("min", 0), ("p5", 5), ("median", 50), ("p95", 95), ("max", 100))}
    return out
