"""Studio fixtures: a workspace holding a real GRID clip and a faceset extracted from it, and a logged-in client."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest

TOKEN = "test-token-0123456789abcdef"
BASE = "http://127.0.0.1:8765"


@pytest.fixture()
def workspace(tmp_path, grid_faceset, grid_clip) -> Path:
    ws = tmp_path / "ws"
    (ws / "clips").mkdir(parents=True)
    shutil.copy(grid_clip("bbaf2n"), ws / "clips" / "bbaf2n.mpg")
    shutil.copytree(grid_faceset("bbaf2n", every_nth=5), ws / "facesets" / "bbaf2n")
    (ws / "models").mkdir()
    (ws / "models" / "quick96.safetensors").write_bytes(b"x")
    return ws


def make_client(ws: Path, login: bool = True, **kwargs):
    with warnings.catch_warnings():  # starlette 1.10 prefers httpx2; httpx (pinned) still works
        warnings.filterwarnings("ignore", message=".*httpx2")
        from starlette.testclient import TestClient

    from facedouble.studio.app import create_app

    client = TestClient(create_app(ws, TOKEN, **kwargs), base_url=BASE, follow_redirects=False)
    if login:
        r = client.get(f"/?token={TOKEN}")
        assert r.status_code == 303, r.text
    return client


def csrf(client) -> dict:
    """Headers a same-origin page sends with a state change."""
    return {"X-CSRF-Token": client.cookies["fd_csrf"], "Origin": BASE}


@pytest.fixture()
def client(workspace):
    return make_client(workspace)


IDENTITY = "grid-speaker"


@pytest.fixture(scope="session")
def trained_workspace(tmp_path_factory, grid_faceset, grid_clip) -> Path:
    """A workspace as an artist has it before tuning a shot: the GRID clip, its faceset bound to a consent
    record, a test signer, and a tiny model trained on it for a few iterations (shared by the merge tests)."""
    from facedouble.consent.records import add_identity, bind_faceset
    from facedouble.train.trainer import Trainer
    from facedouble.trust.c2pa_sign import init_test_ca

    ws = tmp_path_factory.mktemp("studio_trained") / "ws"
    (ws / "clips").mkdir(parents=True)
    shutil.copy(grid_clip("bbaf2n"), ws / "clips" / "bbaf2n.mpg")
    shutil.copytree(grid_faceset("bbaf2n"), ws / "facesets" / "bbaf2n")  # every frame: the watermark votes across them
    release = ws.parent / "release.txt"
    release.write_text("signed release of the GRID speaker (test)\n")
    add_identity(ws, IDENTITY, release, scope="facedouble studio tests", reference=ws / "facesets" / "bbaf2n")
    bind_faceset(ws, IDENTITY, ws / "facesets" / "bbaf2n")
    init_test_ca(ws / "certs")
    # a fixed watermark secret (a workspace's own is random): the same lattice every run; and 40 iterations, not
    # 2: on a 2-iteration blob face (no eyes or mouth yet) the landmark-anchored mark is found under some
    # payloads and not others (README, "A featureless face loses the mark"), and any new merge setting moves it
    import hashlib

    from facedouble.policy.keys import key_path, write_private

    write_private(key_path(ws, "watermark"), hashlib.sha256(b"facedouble studio test key").hexdigest().encode() + b"\n")
    fs = ws / "facesets" / "bbaf2n"
    Trainer.create(ws / "models" / "tiny", fs, fs, "tiny",
                   train_overrides={"batch_size": 2, "workers": 0, "max_iters": 40, "save_every_min": 60.0,
                                    "preview_every_min": 60.0, "optimizer_kernel": "eager"},
                   workspace=ws).run()
    return ws


SHOT = "renders/shot.mp4"


@pytest.fixture(scope="session")
def rendered_shot(trained_workspace) -> dict:
    """A short shot rendered by a studio merge job, with a key saved as the overrides file (once per session:
    the API test reads the job, the browser test verifies the output in the Verify page)."""
    from facedouble.studio.jobs import JobRunner

    client = make_client(trained_workspace)
    session = {"faceset": "facesets/bbaf2n", "keys": [{"frame": 20, "settings": {"colour": "lct", "blur": 6}}],
               "ranges": []}
    saved = client.post("/api/merge/session", json=session, headers=csrf(client)).json()
    job = {"kind": "merge", "model": "models/tiny", "faceset": "facesets/bbaf2n", "out": SHOT,
           "overrides": saved["overrides"], "settings": {"colour": "lct"}}
    r = client.post("/api/jobs", json=job, headers=csrf(client))
    assert r.status_code == 200, r.text
    record = JobRunner(trained_workspace).wait(r.json()["id"], timeout_s=240)
    assert record["state"] == "done", client.get(f"/api/jobs/{record['id']}/log").text
    return record
