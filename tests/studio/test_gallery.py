"""Workspace listing, gallery paging and sorting, cached thumbnails, reject/restore on a real GRID faceset."""

from __future__ import annotations

import io

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


def test_sort_by_metric_matches_faceset_sort(client, workspace):
    r = client.get("/api/faceset/page", params={"faceset": "facesets/bbaf2n", "sort": "blur", "limit": 500}).json()
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
