"""Mask editor API: labels saved into the face through facedouble.mask, read back; predicted-mask overlay;
unlabelled navigation; segmenter jobs; path escapes and CSRF on the new routes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from facedouble.mask import read_labels
from facedouble.studio.jobs import JobRunner
from tests.studio.conftest import csrf

FS = "facesets/bbaf2n"
SQUARE = [[10.0, 10.0], [50.0, 10.0], [50.0, 50.0], [10.0, 50.0]]
HOLE = [[20.0, 20.0], [30.0, 20.0], [25.0, 30.0]]


def _names(client) -> list[str]:
    return [f["name"] for f in client.get("/api/mask/faces", params={"faceset": FS}).json()["faces"]]


def test_labels_are_saved_into_the_face_and_read_back(client, workspace):
    names = _names(client)
    labels = {"include": [SQUARE], "exclude": [HOLE]}
    r = client.post("/api/mask/labels", json={"faceset": FS, "name": names[1], "labels": labels},
                    headers=csrf(client))
    assert r.status_code == 200, r.text
    stored = read_labels(workspace / FS / names[1])  # the schema of `mask label import`
    assert np.allclose(stored.include[0], SQUARE) and np.allclose(stored.exclude[0], HOLE)
    face = client.get("/api/mask/face", params={"faceset": FS, "name": names[1]}).json()
    assert face["labels"] == labels and face["prev"] == names[0] and face["size"] == 64
    listing = client.get("/api/mask/faces", params={"faceset": FS}).json()
    assert listing["labelled"] == 1 and listing["faces"][1]["labelled"]
    # navigation skips labelled faces; the first face's next unlabelled one is the third
    first = client.get("/api/mask/face", params={"faceset": FS, "name": names[0]}).json()
    assert first["next"] == names[1] and first["next_unlabelled"] == names[2] and first["prev_unlabelled"] is None
    cleared = client.post("/api/mask/labels", json={"faceset": FS, "name": names[1], "labels": None},
                          headers=csrf(client))
    assert cleared.json()["labels"] is None and read_labels(workspace / FS / names[1]) is None


@pytest.mark.parametrize("labels", [{"include": [[[1, 2], [3, 4]]]}, {"include": [SQUARE], "extra": []},
                                    {"include": [[[1, 2], [3, 4], [9e9, 1]]]}, {"include": "x"}])
def test_bad_labels_are_refused_and_change_nothing(client, workspace, labels):
    name = _names(client)[0]
    before = (workspace / FS / name).read_bytes()
    r = client.post("/api/mask/labels", json={"faceset": FS, "name": name, "labels": labels}, headers=csrf(client))
    assert r.status_code == 400 and "labels" in r.json()["error"]
    assert (workspace / FS / name).read_bytes() == before


def test_predicted_mask_overlay_when_the_face_has_one(client, workspace):
    from facedouble.faceset.meta import read_face, write_face
    from facedouble.faceset.xseg import encode_mask

    name = _names(client)[2]
    assert client.get("/api/mask/predicted", params={"faceset": FS, "name": name}).status_code == 404
    rgb, meta = read_face(workspace / FS / name)
    mask = np.zeros((64, 64), np.float32)
    mask[16:48, 8:56] = 1.0
    meta.xseg = encode_mask(mask, "test-model")
    write_face(workspace / FS / name, rgb, meta)
    assert client.get("/api/mask/face", params={"faceset": FS, "name": name}).json()["predicted"] is True
    r = client.get("/api/mask/predicted", params={"faceset": FS, "name": name})
    overlay = np.asarray(Image.open(io.BytesIO(r.content)))
    assert overlay.shape == (64, 64, 4) and overlay[32, 32, 3] == 255 and overlay[2, 2, 3] == 0


def test_mask_routes_refuse_escapes_and_need_csrf(client, workspace):
    (workspace.parent / "outside").mkdir()
    name = _names(client)[0]
    for faceset in ("../outside", "%2e%2e/outside", "/etc"):
        assert client.get("/api/mask/faces", params={"faceset": faceset}).status_code == 400
    for bad in ("../../x.png", "_rejected/../../x.png", "/etc/passwd"):
        assert client.get("/api/mask/face", params={"faceset": FS, "name": bad}).status_code == 400
        r = client.post("/api/mask/labels", json={"faceset": FS, "name": bad, "labels": None}, headers=csrf(client))
        assert r.status_code == 400
    assert client.post("/api/mask/labels", json={"faceset": FS, "name": name, "labels": None}).status_code == 403


def test_segmenter_buttons_start_mask_train_and_apply_jobs(client, workspace):
    r = client.post("/api/jobs", json={"kind": "mask-train", "faceset": FS, "model": "masks/seg", "max_iters": 1},
                    headers=csrf(client))
    assert r.status_code == 200, r.text
    args = r.json()["args"]
    assert args[:2] == ["mask", "train"] and args[args.index("--model") + 1].endswith("masks/seg")
    assert args[args.index("--faceset") + 1] == str(workspace / FS)
    JobRunner(workspace).cancel(r.json()["id"])
    r = client.post("/api/jobs", json={"kind": "mask-apply", "faceset": FS, "model": "generic"}, headers=csrf(client))
    assert r.json()["args"] == ["mask", "apply", "--model", "generic", str(workspace / FS)]
    JobRunner(workspace).cancel(r.json()["id"])
    bad = client.post("/api/jobs", json={"kind": "mask-apply", "faceset": FS, "model": "../m"}, headers=csrf(client))
    assert bad.status_code == 400
