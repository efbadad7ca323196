"""The merge work folder: segment names and records, the run's fingerprint and the clip's digest."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from facedouble.config import to_dict
from facedouble.errors import FacedoubleError
from facedouble.io.atomic import atomic_write_json
from facedouble.io.digest import sha256_file
from facedouble.merge.config import MergeConfig, Outputs
from facedouble.merge.model import Swapper
from facedouble.merge.overrides import OverrideRule
from facedouble.merge.plan import MergePlan

PLAN_FILE = "plan.json"


def segment_name(k: int) -> str:
    """File stem of segment k in the work folder."""
    return f"seg_{k:05d}"


@functools.lru_cache(maxsize=16)
def _clip_digest(path: str, stamp: tuple) -> str:
    root = Path(path)
    if not root.is_dir():
        return sha256_file(root)
    # an image-sequence folder: its frames' names and contents, in order
    digest = hashlib.sha256()
    for name, *_ in stamp:
        digest.update(f"{name}\0{sha256_file(root / name)}\0".encode())
    return digest.hexdigest()


def clip_digest(clip: str | Path) -> str:
    """SHA-256 of the clip's bytes, or of a still folder's frames (cached per path, sizes and mtimes).

    By content, not name or size: a regraded plate of the same byte size is another clip, and the same
    file on another machine's mount point is the same one.
    """
    path = Path(clip).resolve()
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.is_file())
        stamp = tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    else:
        st = path.stat()
        stamp = (st.st_size, st.st_mtime_ns)
    return _clip_digest(str(path), stamp)


def fingerprint(model: Swapper, plan: MergePlan, config: MergeConfig, rules: list[OverrideRule],
                outputs: Outputs) -> str:
    """Hash of everything that changes the pixels; a work folder from other settings is not reused."""
    # The clip by content, not path: shards on machines with other mount points must agree.
    data = {"model": model.model_hash, "clip": clip_digest(plan.clip),
            "size": [plan.info.width, plan.info.height],
            "config": to_dict(config) | {"workers": None}, "rules": [dataclasses.asdict(r) for r in rules],
            "outputs": {k: v is not None for k, v in dataclasses.asdict(outputs).items()}, "faces": sorted(
                (i, j.track_id, np.round(j.to_frame, 6).tolist()) for i, js in plan.faces.items() for j in js)}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def prepare_work_dir(outputs: Outputs, state: dict[str, Any], fresh: bool) -> Path:
    """Create or check the work folder; FacedoubleError if it belongs to a different setup."""
    work = outputs.work_dir()
    plan_file = work / PLAN_FILE
    if fresh and work.exists():
        shutil.rmtree(work)
    if plan_file.exists():
        old = json.loads(plan_file.read_text(encoding="utf-8"))
        if old.get("fingerprint") != state["fingerprint"]:
            raise FacedoubleError(f"{work} holds a merge with other settings or model; re-run with --fresh "
                                  "to start over")
    else:
        atomic_write_json(plan_file, state)
    return work


def segment_records(work: Path) -> dict[int, dict[str, Any]]:
    """Finished segments' records by segment index."""
    out = {}
    for path in sorted(work.glob("seg_*.json")):
        out[int(path.stem[4:])] = json.loads(path.read_text(encoding="utf-8"))
    return out
