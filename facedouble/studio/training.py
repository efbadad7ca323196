"""Training view logic: a model folder's loss curve, preview and the job training it.

What `facedouble train` writes is read as it is (facedouble.nn.checkpoint, facedouble.train.losslog):
`loss.csv` (the whole curve, appended at each save), `preview.png` (rewritten at each save and preview),
`latest.json` (the published checkpoint). Between saves the curve is continued from the job's own status
line (the one the CLI prints every second), so the chart moves while the model trains.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from facedouble.nn.checkpoint import LATEST, has_checkpoint
from facedouble.studio.jobs import FINAL_STATES, JobRunner
from facedouble.studio.paths import STUDIO_DIR, relative
from facedouble.train.losslog import CSV_NAME

MAX_POINTS = 2000  # the chart gets at most this many points (a week of training is millions of rows)
_STATUS = re.compile(r"iter (\d+) +([\d.]+) samples/s +src ([\d.]+) +dst ([\d.]+) +save in ([\d:-]+)")


def model_dirs(workspace: Path, runner: JobRunner) -> list[str]:
    """Face model folders of the workspace (a published checkpoint, or one a train job is writing)."""
    found = set()
    for latest in workspace.glob(f"**/{LATEST}"):
        rel = relative(workspace, latest.parent)
        if STUDIO_DIR in Path(rel).parts or len(Path(rel).parts) > 3:
            continue
        if not _is_segmenter(latest.parent):
            found.add(rel)
    for job in runner.list():
        if job["kind"] == "train" and (job.get("meta") or {}).get("model"):
            found.add(job["meta"]["model"])
    return sorted(found)


def _is_segmenter(folder: Path) -> bool:
    try:
        from facedouble.nn.checkpoint import load_state

        return load_state(folder).get("kind") == "facedouble.segmenter"
    except Exception:  # noqa: BLE001 - an unreadable folder is simply not listed as a face model
        return True


def read_loss_csv(path: Path) -> list[list[float]]:
    """Rows [iteration, src, dst] of loss.csv (a torn last line is skipped)."""
    rows = []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return rows
    for line in lines[1:]:
        parts = line.split(",")
        try:
            rows.append([int(parts[0]), float(parts[1]), float(parts[2])])
        except (ValueError, IndexError):
            continue
    return rows


def live_rows(log_text: str) -> tuple[list[list[float]], dict[str, Any] | None]:
    """Loss rows from the trainer's status lines in a job log, and the newest status."""
    rows, last = [], None
    for m in _STATUS.finditer(log_text):
        rows.append([int(m[1]), float(m[3]), float(m[4])])
        last = {"iteration": int(m[1]), "samples_per_s": float(m[2]), "save_in": m[5]}
    return rows, last


def _thin(rows: list[list[float]], n: int = MAX_POINTS) -> list[list[float]]:
    if len(rows) <= n:
        return rows
    step = len(rows) / n
    return [rows[int(i * step)] for i in range(n - 1)] + [rows[-1]]


def status(workspace: Path, runner: JobRunner, folder: Path) -> dict[str, Any]:
    """Loss curve (saved + live), preview, checkpoint iteration and the newest train job of `folder`."""
    rel = relative(workspace, folder)
    rows = read_loss_csv(folder / CSV_NAME)
    jobs = [j for j in runner.list() if j["kind"] == "train" and (j.get("meta") or {}).get("model") == rel]
    job = jobs[0] if jobs else None
    live = None
    if job is not None and job["state"] not in FINAL_STATES:
        extra, live = live_rows(runner.log(job["id"], 400_000))
        last = rows[-1][0] if rows else 0
        rows += [r for r in extra if r[0] > last]
    preview = folder / "preview.png"
    iteration = None
    if has_checkpoint(folder):
        try:
            from facedouble.nn.checkpoint import load_state

            iteration = int(load_state(folder).get("iteration", 0))
        except Exception:  # noqa: BLE001 - a checkpoint being replaced right now: show the rest
            iteration = None
    return {"model": rel, "loss": _thin(rows), "points": len(rows), "checkpoint_iteration": iteration,
            "preview": f"{rel}/preview.png" if preview.is_file() else None,
            "preview_mtime": preview.stat().st_mtime_ns if preview.is_file() else None,
            "live": live, "job": job}
