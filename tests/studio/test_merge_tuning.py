"""Merge tuning API: marked previews through trust.render, keys and ranges saved as a merge overrides file,
a render job, and Verify on its output."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from facedouble.merge.overrides import FaceSettings, Overrides, load_overrides
from tests.studio.conftest import SHOT, csrf, make_client

Q = {"model": "models/tiny", "faceset": "facesets/bbaf2n"}


@pytest.fixture()
def tclient(trained_workspace):
    return make_client(trained_workspace)


def _image(response, kind: str = "png") -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == f"image/{kind}"
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"), np.int16)


def test_shot_lists_the_target_frames(tclient):
    shot = tclient.get("/api/merge/shot", params=Q).json()
    assert shot["frames"] >= 70 and shot["clip"].endswith("bbaf2n.mpg")
    assert shot["defaults"]["colour"] == "rct"
    # the panel's menus: merge's own values, the defaults among them
    assert {"mask", "colour", "blend"} <= shot["choices"].keys()
    assert all(shot["defaults"][name] in values for name, values in shot["choices"].items())


def test_preview_is_marked_and_follows_the_colour_mode(tclient, trained_workspace):
    plate = _image(tclient.get("/api/merge/plate", params={**Q, "frame": 10}), "jpeg")
    rct = _image(tclient.get("/api/merge/preview", params={**Q, "frame": 10, "colour": "rct"}))
    none = _image(tclient.get("/api/merge/preview", params={**Q, "frame": 10, "colour": "none"}))
    assert rct.shape == plate.shape == none.shape
    assert np.abs(rct - plate).mean() > 0.5  # the face and the SYNTHETIC PREVIEW label changed the frame
    assert np.abs(rct - none).max() > 20  # another colour transfer, another face
    # exactly the frame of the CLI's trust path (consent check, watermark, SYNTHETIC PREVIEW label), with the
    # model loaded as the CLI loads it: the studio's bf16 weights and scrubber frames change no pixel
    from facedouble.merge.model import load_model
    from facedouble.merge.pipeline import MergeConfig
    from facedouble.trust.render import render_preview

    marked = render_preview(load_model(trained_workspace / Q["model"]), trained_workspace / Q["faceset"], 10,
                            workspace=trained_workspace, config=MergeConfig(colour="rct"))
    assert np.array_equal(rct, marked)
    bad = tclient.get("/api/merge/preview", params={**Q, "frame": 10, "colour": "sepia"})
    assert bad.status_code == 400 and "sepia" in bad.json()["error"]


def test_preview_of_a_model_without_consent_is_refused(tclient, monkeypatch):
    from facedouble.studio import tuning
    from tests.standin import ShiftSwapper

    monkeypatch.setattr(tuning, "load_model", lambda folder: ShiftSwapper(64))
    r = tclient.get("/api/merge/preview", params={**Q, "frame": 5})
    assert r.status_code == 403 and "consent" in r.json()["error"]


def test_keys_are_copied_forward_into_the_overrides_file(tclient, trained_workspace):
    body = {"faceset": Q["faceset"], "keys": [{"frame": 30, "settings": {"colour": "lct", "erode": 2}},
                                              {"frame": 10, "settings": {"colour": "mkl"}}],
            "ranges": [{"frames": "40-44", "settings": {"blur": 9}}]}
    r = tclient.post("/api/merge/session", json=body, headers=csrf(tclient))
    assert r.status_code == 200, r.text
    path = trained_workspace / r.json()["overrides"]
    assert json.loads(path.read_text())["override"][0] == {"frames": "10-29", "colour": "mkl"}
    rules = load_overrides(path)  # what `merge --overrides` reads
    resolved = Overrides(FaceSettings(), rules)
    assert resolved.for_frame(5).colour == "rct" and resolved.for_frame(29).colour == "mkl"
    assert resolved.for_frame(30).colour == "lct" and resolved.for_frame(74).erode == 2
    assert resolved.for_frame(42).blur == 9 and resolved.for_frame(45).blur == FaceSettings().blur
    assert tclient.get("/api/merge/effective", params={"faceset": Q["faceset"], "frame": 42}).json()["blur"] == 9
    again = tclient.get("/api/merge/session", params={"faceset": Q["faceset"]}).json()
    assert again["keys"] == body["keys"] and again["overrides"] == r.json()["overrides"]
    bad = {**body, "ranges": [{"frames": "9-3", "settings": {}}]}
    assert tclient.post("/api/merge/session", json=bad, headers=csrf(tclient)).status_code == 400
    assert tclient.post("/api/merge/session", json=body).status_code == 403  # no CSRF token


def test_render_job_output_passes_verify(tclient, rendered_shot):
    record = rendered_shot  # a merge job started through /api/jobs with the saved overrides (conftest)
    assert "--overrides" in record["args"] and record["args"][record["args"].index("--set") + 1] == 'colour="lct"'
    assert SHOT in tclient.get("/api/verify/files").json()
    report = tclient.get("/api/verify", params={"path": SHOT}).json()
    assert report["verdict"] == "facedouble-render" and report["exit_code"] == 0, report["summary"]
    plain = tclient.get("/api/verify", params={"path": "clips/bbaf2n.mpg"}).json()
    assert plain["exit_code"] == 1 and plain["verdict"] == "no-provenance"


@pytest.mark.parametrize("params", [{"model": "../models/tiny", "faceset": Q["faceset"]},
                                    {"model": Q["model"], "faceset": "%2e%2e/facesets/bbaf2n"},
                                    {"model": "/etc", "faceset": Q["faceset"]}])
def test_merge_routes_refuse_paths_outside_the_workspace(tclient, params):
    for url in ("/api/merge/shot", "/api/merge/preview", "/api/merge/plate"):
        assert tclient.get(url, params={**params, "frame": 1}).status_code == 400, url
    r = tclient.post("/api/jobs", json={"kind": "merge", **Q, "out": "../outside.mp4"}, headers=csrf(tclient))
    assert r.status_code == 400
    assert tclient.get("/api/verify", params={"path": "../x.mp4"}).status_code == 400
