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
