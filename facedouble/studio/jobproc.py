"""Supervisor of one studio job: `python -P -m facedouble.studio.jobproc JOB.json`.

Waits its turn in the workspace's queue (one job at a time), then runs `python -P -m facedouble <args>`
with output to JOB.log, and records the state transitions in JOB.json.
SIGTERM (cancel) reaches the command as SIGINT, i.e. Ctrl-C, which every facedouble command handles by keeping
its finished work (train saves a checkpoint, extract and merge keep whole segments and resume); after
`grace_s` (record field, default GRACE_S) it is terminated, then killed. The record then says `cancelled`.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from facedouble.io.atomic import atomic_write_json

GRACE_S = 10.0
QUEUE_LOCK = ".queue.lock"


def main(job_file: str) -> int:
    """Run the job described by `job_file` to its end."""
    path = Path(job_file)
    record = json.loads(path.read_text())
    cancelled = False
    child: subprocess.Popen | None = None

    def on_term(signum, frame):  # noqa: ARG001 (signal handler signature)
        nonlocal cancelled
        cancelled = True
        if child is not None:
            child.send_signal(signal.SIGINT)

    signal.signal(signal.SIGTERM, on_term)  # before the child exists: a cancel that comes early still counts
    record["supervisor_pid"] = os.getpid()
    atomic_write_json(path, record)
    # One job at a time (two CPU jobs on 2 cores only slow each other): wait for the workspace's queue lock.
    # The kernel drops a flock when its holder dies, so a crashed job never blocks the queue.
    queue = open(path.parent / QUEUE_LOCK, "ab")  # noqa: SIM115 (held until this process exits)
    while not cancelled:
        try:
            fcntl.flock(queue, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            time.sleep(0.2)
    if cancelled:
        record.update(state="cancelled", ended=time.time())
        atomic_write_json(path, record)
        return 0
    with open(path.with_suffix(".log"), "ab") as log:
        child = subprocess.Popen([sys.executable, "-P", "-m", "facedouble", *record["args"]],
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        if cancelled:
            child.send_signal(signal.SIGINT)
        record.update(state="running", started=time.time(), pid=child.pid)
        atomic_write_json(path, record)
        killed_at = None
        grace = float(record.get("grace_s") or GRACE_S)
        while True:
            try:
                rc = child.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if cancelled:
                    killed_at = killed_at or time.monotonic()
                    waited = time.monotonic() - killed_at
                    if waited > grace + 5:
                        child.kill()
                    elif waited > grace:
                        child.terminate()
    state = "cancelled" if cancelled else ("done" if rc == 0 else "failed")
    record.update(state=state, ended=time.time(), returncode=rc)
    atomic_write_json(path, record)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
