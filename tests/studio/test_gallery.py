"""Workspace listing, gallery paging and sorting, cached thumbnails, reject/restore on a real GRID faceset."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
from PIL import Image

from facedouble.faceset.curate import score_faceset
from facedouble.faceset.store import REJECTS_DIR
from tests.studio.conftest import csrf


def test_workspace_lists_clips_facesets_models(client):
    ws = client.get("/api/workspace").json()
    assert ws["clips"] == ["clips/bbaf2n.mpg"]
    assert [f["path"] for f in ws["facesets"]] == ["facesets/bbaf2n"] and ws["facesets"][0]["faces"] >= 10
    assert ws["models"] == ["models/quick96.safetensors"] and ws["jobs"] == []


def test_pages_cover_every_face_once(client, workspace):
    names = sorted(p.name for p in (workspace / "facesets/bbaf2n").glob("*.png"))
    first = client.get("/api/faceset/page", params={"faceset": "facesets/bbaf2n", "limit": 4}).json()
    rest = client.get("/api/faceset/page", params={"faceset": "facesets/bbaf2n", "offset": 4, "limit": 500}).json()
    assert first["total"] == len(names) and [f["name"] for f in first["faces"] + rest["faces"]] == names
    assert client.get("/api/faceset/page", params={"faceset": "facesets/bbaf2n", "limit": 0}).status_code == 400


def sorted_page(client, metric: str, **params) -> dict:
    """The page sorted by `metric`, asking again while the server scores it (as the grid does)."""
    deadline = time.monotonic() + 60
    while True:
        r = client.get("/api/faceset/page", params={"faceset": "facesets/bbaf2n", "sort": metric, **params})
        assert r.status_code == 200, r.text
        if not r.json()["scoring"]:
            return r.json()
        assert time.monotonic() < deadline, r.json()
        time.sleep(r.json()["poll_s"])


def test_sort_by_metric_matches_faceset_sort(client, workspace):
    r = sorted_page(client, "blur", limit=500)
    expected = [p.name for p, _ in score_faceset(workspace / "facesets/bbaf2n", "blur", progress=False)]
    assert [f["name"] for f in r["faces"]] == expected
    values = [f["value"] for f in r["faces"]]
    assert values == sorted(values, reverse=True)  # sharper first
    assert client.get("/api/faceset/page", params={"faceset": "facesets/bbaf2n", "sort": "nope"}).status_code == 400


def test_thumbnail_is_a_jpeg_made_once(client, workspace):
    name = client.get("/api/faceset/page", params={"faceset": "facesets/bbaf2n"}).json()["faces"][0]["name"]
    r = client.get("/api/faceset/thumb", params={"faceset": "facesets/bbaf2n", "name": name})
    assert r.headers["content-type"] == "image/jpeg"
    im = Image.open(io.BytesIO(r.content))
    assert im.format == "JPEG" and max(im.size) <= 128
    cached = list((workspace / ".studio" / "thumbs").rglob("*.jpg"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    assert client.get("/api/faceset/thumb", params={"faceset": "facesets/bbaf2n", "name": name}).content == r.content
    assert cached[0].stat().st_mtime_ns == mtime
    assert client.get("/api/faceset/face", params={"faceset": "facesets/bbaf2n", "name": name}).status_code == 200


def test_reject_and_restore_move_files_like_faceset_sort(client, workspace):
    folder = workspace / "facesets/bbaf2n"
    name = sorted(p.name for p in folder.glob("*.png"))[1]
    r = client.post("/api/faceset/reject", json={"faceset": "facesets/bbaf2n", "names": [name]}, headers=csrf(client))
    assert r.json()["moved"] == [f"{REJECTS_DIR}/manual/{name}"]
    assert not (folder / name).exists() and (folder / REJECTS_DIR / "manual" / name).is_file()
    rej = client.get("/api/faceset/page", params={"faceset": "facesets/bbaf2n", "rejected": "true"}).json()
    assert [f["name"] for f in rej["faces"]] == [f"{REJECTS_DIR}/manual/{name}"]
    again = client.post("/api/faceset/reject", json={"faceset": "facesets/bbaf2n", "names": [name]},
                        headers=csrf(client))
    assert again.status_code == 400
    r = client.post("/api/faceset/restore", json={"faceset": "facesets/bbaf2n", "names": rej["faces"][0:1] and
                                                  [rej["faces"][0]["name"]]}, headers=csrf(client))
    assert r.json()["moved"] == [name] and (folder / name).is_file()


def test_first_sort_is_scored_in_the_background_with_progress(client, workspace, monkeypatch):
    from facedouble.faceset import metrics

    gate, seen = threading.Event(), []

    def slow_blur(image, meta, ctx):  # the first face waits until the test has seen the server answer
        seen.append(1)
        gate.wait(30)
        return float(image.std())

    monkeypatch.setitem(metrics.METRICS, "blur", slow_blur)
    params = {"faceset": "facesets/bbaf2n", "sort": "blur", "limit": 500}
    first = client.get("/api/faceset/page", params=params).json()  # answers at once, in name order
    names = sorted(p.name for p in (workspace / "facesets/bbaf2n").glob("*.png"))
    assert first["scoring"] == {"metric": "blur", "done": 0, "total": len(names)} and first["sort"] is None
    assert [f["name"] for f in first["faces"]] == names and first["poll_s"] > 0
    assert client.get("/api/workspace").status_code == 200  # the server answers while the faces are scored
    assert client.get("/api/faceset/page", params=params).json()["scoring"]["metric"] == "blur"  # not twice
    gate.set()
    done = sorted_page(client, "blur", limit=500)
    assert done["sort"] == "blur" and len(done["faces"]) == len(names) and len(seen) == len(names)
    # rejecting a face keeps the scores: no second scoring, the order of the rest unchanged
    rejected = done["faces"][0]["name"]
    client.post("/api/faceset/reject", json={"faceset": "facesets/bbaf2n", "names": [rejected]}, headers=csrf(client))
    again = client.get("/api/faceset/page", params=params).json()
    assert again["scoring"] is None and [f["name"] for f in again["faces"]] == [f["name"] for f in done["faces"][1:]]
    assert len(seen) == len(names)


def test_a_metric_that_cannot_score_the_faceset_reports_why(client, workspace, monkeypatch):
    from facedouble.errors import FacedoubleError
    from facedouble.faceset import metrics

    def broken(image, meta, ctx):
        raise FacedoubleError("faceset has no identity embeddings; give --reference")

    monkeypatch.setitem(metrics.METRICS, "identity", broken)
    params = {"faceset": "facesets/bbaf2n", "sort": "identity"}
    deadline = time.monotonic() + 30
    while (r := client.get("/api/faceset/page", params=params)).status_code == 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert r.status_code == 400 and "embeddings" in r.json()["error"]


@pytest.mark.parametrize("overlay", ["landmarks", "mask", "mask,landmarks"])
def test_overlays_are_drawn_into_the_thumbnail(client, workspace, overlay):
    name = sorted(p.name for p in (workspace / "facesets/bbaf2n").glob("*.png"))[0]
    q = {"faceset": "facesets/bbaf2n", "name": name}
    r = client.get("/api/faceset/thumb", params={**q, "overlay": overlay})
    assert r.status_code == 200 and r.headers["cache-control"] == "private, no-cache"
    drawn = np.asarray(Image.open(io.BytesIO(r.content)), np.int16)
    assert drawn.shape == (128, 128, 3)  # drawn at the grid's size (a 64 px face is scaled up for the lines)
    plain = Image.open(io.BytesIO(client.get("/api/faceset/thumb", params=q).content)).resize((128, 128))
    assert np.abs(drawn - np.asarray(plain, np.int16)).max() > 60
    big = client.get("/api/faceset/thumb", params={**q, "overlay": overlay, "size": 256})
    assert Image.open(io.BytesIO(big.content)).size == (256, 256)
    assert client.get("/api/faceset/thumb", params={**q, "overlay": "eyes"}).status_code == 400
    assert client.get("/api/faceset/thumb", params={**q, "size": 4096}).status_code == 400


def test_mask_overlay_shows_labels_and_the_predicted_mask(workspace):
    from facedouble.faceset.meta import read_face
    from facedouble.faceset.xseg import encode_mask
    from facedouble.mask import FaceLabels
    from facedouble.studio.gallery import draw_overlays

    rgb, meta = read_face(next((workspace / "facesets/bbaf2n").glob("*.png")))
    hull = draw_overlays(rgb, meta, ("mask",), 128).astype(np.int16)
    meta.xseg = encode_mask(np.zeros((meta.size, meta.size), np.float32), "test")  # predicted: nothing kept
    assert np.abs(draw_overlays(rgb, meta, ("mask",), 128).astype(np.int16) - hull).max() > 30
    meta.labels = FaceLabels.from_dict({"include": [[[5, 5], [40, 5], [40, 40]]], "exclude": []}, size=meta.size)
    labelled = draw_overlays(rgb, meta, ("mask",), 128)
    assert (labelled[..., 1] > 200).sum() > 40  # the green outline of the include polygon


def test_face_panel_shows_metadata_and_the_source_frame(client, workspace):
    from facedouble.faceset.meta import read_meta
    from facedouble.io.video import open_source

    path = sorted((workspace / "facesets/bbaf2n").glob("*.png"))[3]
    q = {"faceset": "facesets/bbaf2n", "name": path.name}
    meta = read_meta(path)
    info = client.get("/api/faceset/info", params=q).json()
    assert info["frame"] == meta.frame_index and info["source"] == "bbaf2n.mpg" and info["size"] == meta.size
    # the faceset was extracted outside the workspace: its clip is found as clips/<name>
    r = client.get("/api/faceset/source", params=q)
    assert r.status_code == 200 and r.headers["x-clip"] == "clips/bbaf2n.mpg"
    assert int(r.headers["x-frame"]) == meta.frame_index
    shown = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"), np.int16)
    frame = next(iter(open_source(workspace / "clips/bbaf2n.mpg").frames(meta.frame_index))).image
    assert shown.shape == frame.shape
    x, y = np.round(meta.landmarks[8]).astype(int)  # the chin, far from the box's outline
    assert np.abs(shown[y - 3:y + 4, x - 3:x + 4] - frame[y - 3:y + 4, x - 3:x + 4]).mean() < 12
    (workspace / "clips/bbaf2n.mpg").unlink()  # no clip in the workspace: said, nothing read outside it
    r = client.get("/api/faceset/source", params=q)
    assert r.status_code == 400 and "not in the workspace" in r.json()["error"]
