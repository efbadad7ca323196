"""Jobs run as `python -P -m facedouble` processes, recorded in .studio/jobs, cancellable, re-read on restart."""

from __future__ import annotations

import json
import time

from facedouble.studio.jobs import JobRunner
from tests.studio.conftest import csrf, make_client


def test_extract_job_runs_outside_the_server_and_survives_a_restart(client, workspace):
    r = client.post("/api/jobs", json={"kind": "extract", "clip": "clips/bbaf2n.mpg", "output": "facesets/new",
                                       "every_nth": 15}, headers=csrf(client))
    assert r.status_code == 200, r.text
    job = r.json()
    record = JobRunner(workspace).wait(job["id"], timeout_s=120)
    assert record["state"] == "done" and record["returncode"] == 0, client.get(f"/api/jobs/{job['id']}/log").text
    assert record["args"][0] == "extract" and len(list((workspace / "facesets/new").glob("*.png"))) >= 4
    assert "faces written" in client.get(f"/api/jobs/{job['id']}/log").text
    saved = json.loads((workspace / ".studio/jobs" / f"{job['id']}.json").read_text())
    assert saved["state"] == "done"
    restarted = make_client(workspace)  # a new server reads the folder again
    assert [j["id"] for j in restarted.get("/api/jobs").json()] == [job["id"]]
    assert "facesets/new" in [f["path"] for f in restarted.get("/api/workspace").json()["facesets"]]


def test_cancel_stops_the_process_and_records_it(workspace):
    runner = JobRunner(workspace)
    job = runner.start("extract", ["extract", str(workspace / "clips/bbaf2n.mpg"), str(workspace / "fs2"),
                                   "--no-progress"])
    deadline = time.monotonic() + 30
    while runner.get(job["id"])["state"] != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    record = runner.cancel(job["id"])
    assert record["state"] == "cancelled" and record["returncode"] != 0
    assert JobRunner(workspace).get(job["id"])["state"] == "cancelled"


def test_a_job_whose_supervisor_vanished_reads_as_lost(workspace):
    runner = JobRunner(workspace)
    job = runner.start("extract", ["--version"])
    runner.wait(job["id"])
    path = workspace / ".studio/jobs" / f"{job['id']}.json"
    record = json.loads(path.read_text())
    record.update(state="running", supervisor_pid=2 ** 22 + 1)  # a pid that is not running
    path.write_text(json.dumps(record))
    assert runner.get(job["id"])["state"] == "lost"


def test_jobs_queue_one_at_a_time_and_a_queued_job_cancels_without_running(workspace):
    runner = JobRunner(workspace)
    args = ["extract", str(workspace / "clips/bbaf2n.mpg"), str(workspace / "fs3"), "--no-progress"]
    jobs = [runner.start("extract", args)["id"] for _ in range(2)]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # whichever supervisor takes the queue lock first runs
        states = {i: runner.get(i)["state"] for i in jobs}
        if "running" in states.values():
            break
        time.sleep(0.05)
    running = next(i for i, s in states.items() if s == "running")
    waiting = next(i for i in jobs if i != running)
    time.sleep(0.5)
    assert runner.get(waiting)["state"] == "queued"
    record = runner.cancel(waiting)
    assert record["state"] == "cancelled" and record["pid"] is None  # never started
    assert runner.cancel(running)["state"] == "cancelled"
