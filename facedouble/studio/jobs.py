"""Jobs: long work runs as `python -P -m facedouble ...` processes, never inside the web server.

Each job is WORKSPACE/.studio/jobs/<id>.json (written atomically) plus <id>.log. The server writes the first
record and starts `facedouble.studio.jobproc`, a small supervisor in its own session that runs the command,
records its pid, exit code and end state; so a job outlives a closed browser or a stopped server, and a
restarted server finds it by reading the folder again.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from facedouble.errors import InputError
from facedouble.io.atomic import atomic_write_json
from facedouble.studio.paths import STUDIO_DIR

FINAL_STATES = ("done", "failed", "cancelled")
# What the CLI prints as it goes: tqdm bars ("merge:  45%|####5     | 45/100 [00:03<00:04, 12.3frame/s]") and
# the trainer's status line ("[12:00:01] iter 120  8.1 samples/s  src 0.0412 dst 0.0398  save in 3:05").
_TQDM = re.compile(r"(?:(?P<stage>[\w .-]+?): *)?(?:(?P<pct>\d+)%\|[^|]*\| *)?(?P<done>\d+)/(?P<total>\d+|\?) \[")
_TRAIN = re.compile(r"iter (?P<iter>\d+) +(?P<rate>[\d.]+) samples/s +src (?P<src>[\d.naif]+) +dst (?P<dst>[\d.naif]+)"
                    r" +save in (?P<save>[\d:-]+)")


def jobs_dir(workspace: Path) -> Path:
    """Folder of the job records."""
    return workspace / STUDIO_DIR / "jobs"


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by us) is not running
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


class JobRunner:
    """Start, list, cancel jobs of one workspace; all state lives in files, none in this object."""

    def __init__(self, workspace: Path):
        self.workspace = workspace.resolve()
        self.dir = jobs_dir(self.workspace)
        self._children: dict[str, subprocess.Popen] = {}  # reaped on poll, only for jobs this server started

    def start(self, kind: str, args: list[str], grace_s: float | None = None, meta: dict | None = None) -> dict:
        """Spawn `facedouble <args>` as job `kind`; returns the job record.

        `grace_s`: how long a cancelled command may take to save (train writes a checkpoint); `meta`: what the
        views look jobs up by (e.g. {"model": "models/a"}).
        """
        job_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        record = {"id": job_id, "kind": kind, "args": args, "state": "queued", "created": time.time(),
                  "started": None, "ended": None, "returncode": None, "pid": None, "supervisor_pid": None,
                  "grace_s": grace_s, "meta": meta or {}}
        path = self.dir / f"{job_id}.json"
        atomic_write_json(path, record)
        proc = subprocess.Popen([sys.executable, "-P", "-m", "facedouble.studio.jobproc", str(path)],
                                cwd=self.workspace, start_new_session=True,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._children[job_id] = proc
        record["supervisor_pid"] = proc.pid
        return record

    def get(self, job_id: str) -> dict:
        """The job record, with `state: lost` when its supervisor died without writing an end state."""
        if not job_id.replace("-", "").isalnum():
            raise InputError(f"bad job id {job_id!r}")
        path = self.dir / f"{job_id}.json"
        if not path.is_file():
            raise InputError(f"no job {job_id}")
        if job_id in self._children:
            self._children[job_id].poll()
        record = json.loads(path.read_text())
        if record["state"] not in FINAL_STATES:
            child = self._children.get(job_id)
            sup = record.get("supervisor_pid") or (child.pid if child else None)
            if sup and not _alive(sup) and json.loads(path.read_text())["state"] not in FINAL_STATES:
                record["state"] = "lost"
        if record["state"] == "running":
            progress = parse_progress(self.log(job_id, 4096, check=False))
            goal = (record.get("meta") or {}).get("max_iters")
            if progress and progress["total"] is None and goal:  # a capped training run knows its total
                progress.update(total=int(goal), fraction=min(1.0, progress["done"] / int(goal)))
            record["progress"] = progress
        return record

    def list(self) -> list[dict]:
        """All jobs, newest first."""
        if not self.dir.is_dir():
            return []
        ids = sorted((p.stem for p in self.dir.glob("*.json") if not p.name.startswith(".")), reverse=True)
        return [self.get(i) for i in ids]

    def log(self, job_id: str, tail: int = 20000, check: bool = True) -> str:
        """The last `tail` bytes of the job's output (read from the end: a week of training logs stays cheap)."""
        if check:
            self.get(job_id)
        path = self.dir / f"{job_id}.log"
        try:
            with open(path, "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - tail))
                return f.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def cancel(self, job_id: str, wait_s: float | None = None) -> dict:
        """SIGTERM the supervisor (it stops the command and records `cancelled`), wait for the end state."""
        record = self.get(job_id)
        if wait_s is None:
            wait_s = float(record.get("grace_s") or 10.0) + 5.0
        if record["state"] in FINAL_STATES or record["state"] == "lost":
            return record
        child = self._children.get(job_id)
        sup = record.get("supervisor_pid") or (child.pid if child else None)  # it records itself once started
        if sup:
            with contextlib.suppress(ProcessLookupError):
                os.kill(sup, signal.SIGTERM)
        record = self.wait(job_id, wait_s)
        if record["state"] in FINAL_STATES or record["state"] == "lost":
            return record
        if sup:  # it did not stop in time: take the whole process group down
            with contextlib.suppress(ProcessLookupError):
                os.killpg(sup, signal.SIGKILL)
        return self.get(job_id)

    def wait(self, job_id: str, timeout_s: float = 60.0) -> dict:
        """Block until the job ends (tests and scripts)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            record = self.get(job_id)
            if record["state"] in FINAL_STATES or record["state"] == "lost":
                return record
            time.sleep(0.1)
        return self.get(job_id)


def parse_progress(log_tail: str) -> dict | None:
    """The newest progress line of a job's output, as {stage, done, total, fraction, text}; None if none yet.

    The studio shows the same progress the CLI prints: it reads the job's log (tqdm bars, the trainer's
    status line) rather than asking the command for a second channel.
    """
    for segment in reversed(re.split(r"[\r\n]", log_tail)):
        segment = segment.strip()
        if not segment:
            continue
        m = _TRAIN.search(segment)
        if m:
            return {"stage": "train", "done": int(m["iter"]), "total": None, "fraction": None, "text": segment,
                    "samples_per_s": float(m["rate"]), "save_in": m["save"]}
        m = _TQDM.search(segment)
        if m:
            total = None if m["total"] == "?" else int(m["total"])
            done = int(m["done"])
            return {"stage": (m["stage"] or "").strip() or None, "done": done, "total": total,
                    "fraction": min(1.0, done / total) if total else None, "text": segment}
    return None
