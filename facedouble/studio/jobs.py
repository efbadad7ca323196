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

    def start(self, kind: str, args: list[str]) -> dict:
        """Spawn `facedouble <args>` as job `kind`; returns the job record."""
        job_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        record = {"id": job_id, "kind": kind, "args": args, "state": "queued", "created": time.time(),
                  "started": None, "ended": None, "returncode": None, "pid": None, "supervisor_pid": None}
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
        return record

    def list(self) -> list[dict]:
        """All jobs, newest first."""
        if not self.dir.is_dir():
            return []
        ids = sorted((p.stem for p in self.dir.glob("*.json") if not p.name.startswith(".")), reverse=True)
        return [self.get(i) for i in ids]

    def log(self, job_id: str, tail: int = 20000) -> str:
        """The last `tail` characters of the job's output."""
        self.get(job_id)
        path = self.dir / f"{job_id}.log"
        return path.read_text(errors="replace")[-tail:] if path.is_file() else ""

    def cancel(self, job_id: str, wait_s: float = 15.0) -> dict:
        """SIGTERM the supervisor (it stops the command and records `cancelled`), wait for the end state."""
        record = self.get(job_id)
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
