"""Each rule of the studio guard, through the framework test client."""

from __future__ import annotations

import argparse

import pytest

from facedouble.errors import FacedoubleError
from tests.studio.conftest import BASE, TOKEN, csrf, make_client


def test_one_time_url_sets_httponly_strict_cookie_and_redirects(workspace):
    client = make_client(workspace, login=False)
    assert client.get("/api/workspace").status_code == 401
    r = client.get(f"/gallery?faceset=x&token={TOKEN}")
    assert r.status_code == 303 and r.headers["location"] == "/gallery?faceset=x"  # token out of the address bar
    session = next(c for c in r.headers.get_list("set-cookie") if c.startswith("fd_session="))
    assert "HttpOnly" in session and "SameSite=Strict" in session
    assert client.get("/api/workspace").status_code == 200
    assert make_client(workspace, login=False).get("/?token=wrong").status_code == 403


def test_every_route_needs_the_token(workspace):
    anon = make_client(workspace, login=False)
    for url in ("/", "/gallery", "/static/gallery.js", "/api/jobs", "/api/file?path=clips/bbaf2n.mpg"):
        assert anon.get(url).status_code == 401, url
    anon.cookies.set("fd_session", "guess")
    assert anon.get("/api/jobs").status_code == 401


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.evil.example:8765", "attacker:80", ""])
def test_foreign_host_header_is_refused(client, host):
    # DNS rebinding: a page of evil.example resolving to 127.0.0.1 still sends Host: evil.example
    assert client.get("/api/workspace", headers={"host": host}).status_code == 421


@pytest.mark.parametrize("host", ["localhost:8765", "127.0.0.1", "127.0.0.1:9000"])
def test_loopback_host_header_is_accepted(client, host):
    assert client.get("/api/workspace", headers={"host": host}).status_code == 200


def test_state_changes_need_csrf_header_and_same_origin(client):
    body = {"faceset": "facesets/bbaf2n", "names": []}
    assert client.post("/api/faceset/reject", json=body).status_code == 403  # no CSRF header
    assert client.post("/api/faceset/reject", json=body, headers={"X-CSRF-Token": "wrong"}).status_code == 403
    bad_origin = {**csrf(client), "Origin": "http://evil.example"}
    assert client.post("/api/faceset/reject", json=body, headers=bad_origin).status_code == 403
    assert client.post("/api/faceset/reject", json=body, headers={**csrf(client), "Origin": "null"}).status_code == 403
    assert client.post("/api/faceset/reject", json=body, headers=csrf(client)).status_code == 200
    assert client.delete("/api/jobs/x").status_code == 403
    assert client.put("/api/jobs/x").status_code == 403


def test_request_body_is_capped(workspace):
    client = make_client(workspace, max_body=1000)
    big = {"faceset": "facesets/bbaf2n", "names": ["a" * 2000]}
    assert client.post("/api/faceset/reject", json=big, headers=csrf(client)).status_code == 413

    def chunks():  # no Content-Length: the cap still holds while streaming
        yield b'{"faceset": "x", "names": ["' + b"a" * 1500
        yield b'"]}'

    headers = {**csrf(client), "content-type": "application/json"}
    r = client.post("/api/faceset/reject", content=chunks(), headers=headers)
    assert r.status_code == 413


@pytest.mark.parametrize("path", ["../secret.txt", "clips/../../secret.txt", "%2e%2e/secret.txt",
                                  "%252e%252e/secret.txt", "clips/%2e%2e/%2e%2e/secret.txt", "/etc/passwd",
                                  "link/secret.txt", "link_file"])
def test_only_files_inside_the_workspace_are_served(client, workspace, path):
    (workspace.parent / "secret.txt").write_text("secret")
    (workspace / "link").symlink_to(workspace.parent, target_is_directory=True)
    (workspace / "link_file").symlink_to(workspace.parent / "secret.txt")
    r = client.get("/api/file", params={"path": path})
    assert r.status_code in (400, 404) and r.content != b"secret"
    assert client.get("/api/file", params={"path": "clips/bbaf2n.mpg"}).status_code == 200


def test_a_face_symlinked_to_outside_is_not_served(client, workspace):
    (workspace.parent / "secret.png").write_bytes((next((workspace / "facesets/bbaf2n").glob("*.png"))).read_bytes())
    (workspace / "facesets/bbaf2n/zz_link.png").symlink_to(workspace.parent / "secret.png")
    for url in ("/api/faceset/thumb", "/api/faceset/face"):
        assert client.get(url, params={"faceset": "facesets/bbaf2n", "name": "zz_link.png"}).status_code == 400


def test_raw_encoded_traversal_in_the_url_path(client):
    for url in ("/static/..%2f..%2fcli.py", "/static/%2e%2e/%2e%2e/app.py", "/static/../app.py"):
        r = client.get(url)
        assert r.status_code == 404 or b"create_app" not in r.content, url


def test_writes_stay_inside_the_workspace(client, workspace):
    (workspace.parent / "outside").mkdir()
    for faceset in ("../outside", "%2e%2e/outside", str(workspace.parent / "outside")):
        r = client.post("/api/faceset/reject", json={"faceset": faceset, "names": []}, headers=csrf(client))
        assert r.status_code == 400, faceset
    r = client.post("/api/faceset/reject", json={"faceset": "facesets/bbaf2n", "names": ["../../x.png"]},
                    headers=csrf(client))
    assert r.status_code == 400
    r = client.post("/api/jobs", json={"kind": "extract", "clip": "clips/bbaf2n.mpg", "output": "../outside/fs"},
                    headers=csrf(client))
    assert r.status_code == 400
    r = client.post("/api/jobs", json={"kind": "shell", "clip": "clips/bbaf2n.mpg"}, headers=csrf(client))
    assert r.status_code == 400


def test_responses_carry_security_headers(client):
    r = client.get("/")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"


def test_cli_binds_loopback_and_refuses_other_hosts_without_token_file(tmp_path):
    from facedouble.cli import build_parser
    from facedouble.cli.studio import resolve_token

    args = build_parser().parse_args(["studio", str(tmp_path)])
    assert args.host == "127.0.0.1" and args.port == 8765
    with pytest.raises(FacedoubleError, match="token-file"):
        resolve_token("0.0.0.0", None)
    token_file = tmp_path / "token"
    token = resolve_token("0.0.0.0", str(token_file))
    assert token_file.stat().st_mode & 0o077 == 0 and resolve_token("0.0.0.0", str(token_file)) == token
    assert resolve_token("::1", None) != resolve_token("localhost", None)
    assert isinstance(args, argparse.Namespace)


def test_cli_refusal_is_one_line_and_exit_2(tmp_path, capsys):
    from facedouble.cli import main

    assert main(["studio", str(tmp_path), "--host", "0.0.0.0"]) == 2
    assert "token-file" in capsys.readouterr().err
    assert BASE.startswith("http://127.0.0.1")


def test_training_on_an_unbound_faceset_is_refused_before_any_job(client, workspace):
    # the CLI's trust rule in the UI: the consent gate runs on the request, nothing is queued
    body = {"kind": "train", "src": "facesets/bbaf2n", "model": "models/m", "preset": "tiny"}
    r = client.post("/api/jobs", json=body, headers=csrf(client))
    assert r.status_code == 403 and "not bound to a consent record" in r.json()["error"]
    assert client.get("/api/jobs").json() == [] and not (workspace / "models" / "m").exists()


def test_the_merge_pipeline_refuses_an_unmarked_preview():
    # the studio's previews are render_preview's (tests/studio/test_merge_tuning.py: the same pixels as the CLI's
    # marked preview, a model without consent refused, the render job's output verified); below it, the
    # pipeline itself renders nothing without the provenance hooks
    from facedouble.errors import PolicyError
    from facedouble.merge.pipeline import preview

    with pytest.raises(PolicyError, match="marked"):
        preview(object(), "x", 0, None)
