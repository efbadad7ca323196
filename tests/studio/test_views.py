"""Upload, the single-use launch URL, job progress from the CLI's own output, the training status, and the
guard's rules on the new routes."""

from __future__ import annotations

import pytest

from facedouble.studio.jobs import JobRunner, parse_progress
from facedouble.studio.training import live_rows, status
from tests.studio.conftest import BASE, TOKEN, csrf, make_client


def test_launch_url_is_single_use(workspace):
    first = make_client(workspace, login=False)
    assert first.get(f"/?token={TOKEN}").status_code == 303
    assert first.cookies["fd_session"] != TOKEN  # the cookie is a fresh session id, not the printed token
    assert first.get("/api/workspace").status_code == 200
    assert first.get(f"/merge?token={TOKEN}").status_code == 303  # signed in already: the token is just dropped
    second = type(first)(first.app, base_url=BASE, follow_redirects=False)  # another browser, same server
    r = second.get(f"/?token={TOKEN}")
    assert r.status_code == 403 and "already used" in r.text
    assert second.get("/api/workspace").status_code == 401


def test_token_file_tokens_stay_reusable(workspace):
    client = make_client(workspace, login=False, single_use=False)
    assert client.get(f"/?token={TOKEN}").status_code == 303
    client.cookies.clear()
    assert client.get(f"/?token={TOKEN}").status_code == 303


def test_clip_upload_is_named_safely_capped_and_never_overwrites(workspace):
    client = make_client(workspace, max_upload=10_000)
    data = (workspace / "clips" / "bbaf2n.mpg").read_bytes()[:5000]
    r = client.post("/api/upload", params={"name": "../../my take 1.MP4"}, content=data, headers=csrf(client))
    assert r.status_code == 200, r.text
    assert r.json()["clip"] == "clips/my_take_1.mp4" and (workspace / "clips/my_take_1.mp4").read_bytes() == data
    again = client.post("/api/upload", params={"name": "my take 1.mp4"}, content=data, headers=csrf(client))
    assert again.status_code == 400 and "exists" in again.json()["error"]
    assert client.post("/api/upload", params={"name": "run.sh"}, content=b"x", headers=csrf(client)).status_code == 400
    assert client.post("/api/upload", params={"name": ".mp4"}, content=b"x", headers=csrf(client)).json()["clip"] \
        == "clips/clip.mp4"
    big = client.post("/api/upload", params={"name": "big.mp4"}, content=b"x" * 20_000, headers=csrf(client))
    assert big.status_code == 413 and not (workspace / "clips/big.mp4").exists()
    assert client.post("/api/upload", params={"name": "a.mp4"}, content=b"x").status_code == 403  # no CSRF
    assert not [p for p in (workspace / "clips").iterdir() if p.name.startswith(".")]  # no temp files left


def test_progress_is_read_from_what_the_cli_prints():
    tqdm_log = "loading\rextract:  10%|#         | 7/75 [00:01<00:09,  7.1frame/s]\rextract:  20%|##  | 15/75 [00:02"
    tqdm_log += "<00:08,  7.3frame/s]"
    p = parse_progress(tqdm_log)
    assert p["stage"] == "extract" and (p["done"], p["total"]) == (15, 75) and p["fraction"] == pytest.approx(0.2)
    train_log = "\r[10:00:01] iter 7  3.2 samples/s  src 0.1200  dst 0.1100  save in 24:58 "
    assert parse_progress(train_log)["done"] == 7 and parse_progress("no bar here") is None
    rows, last = live_rows(train_log + "\r[10:00:02] iter 9  3.3 samples/s  src 0.1000  dst 0.0900  save in 24:57 ")
    assert rows == [[7, 0.12, 0.11], [9, 0.1, 0.09]] and last["samples_per_s"] == 3.3


def test_training_status_joins_loss_csv_and_the_live_job_log(workspace):
    model = workspace / "models" / "m"
    model.mkdir(parents=True)
    (model / "loss.csv").write_text("iteration,src_loss,dst_loss\n1,0.5,0.6\n2,0.4,0.5\n3,0.3")  # torn last line
    runner = JobRunner(workspace)
    job = runner.start("train", ["--version"], meta={"model": "models/m"})
    runner.wait(job["id"])
    s = status(workspace, runner, model)
    assert s["loss"] == [[1, 0.5, 0.6], [2, 0.4, 0.5]] and s["job"]["id"] == job["id"] and s["preview"] is None
    client = make_client(workspace)
    assert "models/m" in client.get("/api/train/models").json()
    assert client.get("/api/train/status", params={"model": "../x"}).status_code == 400


@pytest.mark.parametrize("body", [
    {"kind": "train", "src": "facesets/bbaf2n", "model": "../m"},
    {"kind": "train", "src": "../facesets/bbaf2n", "model": "models/m"},
    {"kind": "train", "src": "facesets/bbaf2n", "model": "models/m", "preset": "huge"},
    {"kind": "train", "src": "facesets/bbaf2n", "model": "models/m", "options": {"shell": "rm"}},
    {"kind": "train", "src": "facesets/bbaf2n", "model": "models/m", "options": {"max_iters": "many"}},
    {"kind": "merge", "model": "models", "faceset": "facesets/bbaf2n", "out": "r.txt"},
    {"kind": "mask-train", "model": "masks/a"},
    {"kind": "merge", "model": "facesets/bbaf2n", "faceset": "facesets/bbaf2n", "out": "r.mp4",
     "settings": {"colour": "sepia"}},
])
def test_job_requests_are_checked_before_anything_runs(client, workspace, body):
    r = client.post("/api/jobs", json=body, headers=csrf(client))
    assert r.status_code == 400, r.text
    assert client.get("/api/jobs").json() == []


@pytest.mark.parametrize("url", ["/api/mask/labels", "/api/merge/session", "/api/jobs", "/api/upload?name=a.mp4"])
def test_new_state_changes_need_csrf_same_origin_and_session(client, workspace, url):
    assert client.post(url, json={}).status_code == 403
    assert client.post(url, json={}, headers={**csrf(client), "Origin": "http://evil.example"}).status_code == 403
    assert client.post(url, json={}, headers={**csrf(client), "host": "evil.example"}).status_code == 421
    anon = make_client(workspace, login=False)
    assert anon.post(url, json={}, headers={"X-CSRF-Token": "x", "Cookie": "fd_csrf=x"}).status_code == 401


@pytest.mark.parametrize("page", ["/mask", "/train", "/merge", "/verify"])
def test_view_pages_are_served_only_with_a_session(client, workspace, page):
    assert client.get(page).status_code == 200
    assert make_client(workspace, login=False).get(page).status_code == 401


def test_train_job_passes_each_extra_dst_once_and_refuses_bad_ones(workspace, monkeypatch):
    import shutil

    from facedouble.errors import InputError
    from facedouble.studio import jobkinds

    shutil.copytree(workspace / "facesets" / "bbaf2n", workspace / "facesets" / "other")
    monkeypatch.setattr("facedouble.consent.records.require_consent", lambda *a, **k: None)
    body = {"kind": "train", "src": "facesets/bbaf2n", "dst": "facesets/bbaf2n", "model": "models/m"}
    _, args, _ = jobkinds.build(workspace, body | {"extra_dst": ["facesets/other"]})
    assert [args[i + 1] for i, a in enumerate(args) if a == "--dst"] == \
        [str(workspace / "facesets" / "bbaf2n"), str(workspace / "facesets" / "other")]
    for extra, words in ((["facesets/bbaf2n"], "twice"), (["../outside"], "outside"),
                         (["facesets/none"], "not found"), (["facesets/other"] * 8, "at most")):
        with pytest.raises(InputError, match=words):
            jobkinds.build(workspace, body | {"extra_dst": extra})


def test_merge_job_passes_every_panel_setting_not_only_the_old_flags(workspace):
    """Dubbing region, plate parts and edge matching set in the tuning panel reach the render (issue 17)."""
    from facedouble.config import parse_sets
    from facedouble.studio import jobkinds

    model = workspace / "models" / "m"
    model.mkdir(parents=True)
    settings = {"region": "mouth", "keep_from_plate": "mouth,eyes", "edge_match": 0, "colour": "lct", "blur": 6}
    _, args, _ = jobkinds.build(workspace, {"kind": "merge", "model": "models/m", "faceset": "facesets/bbaf2n",
                                            "out": "r.mp4", "settings": settings})
    sets = parse_sets(args[i + 1] for i, a in enumerate(args) if a == "--set")
    assert sets == {"region": "mouth", "keep_from_plate": "mouth,eyes", "edge_match": 0.0, "colour": "lct",
                    "blur": 6.0}
