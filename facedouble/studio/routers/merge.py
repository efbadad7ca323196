"""Merge tuning routes: the shot's frames, marked previews, the plate, keys saved as an overrides file."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel

from facedouble.errors import InputError
from facedouble.merge.overrides import load_overrides
from facedouble.studio import tuning
from facedouble.studio.paths import relative
from facedouble.studio.routers.common import folder, workspace_of

router = APIRouter()
SETTING_PARAMS = tuning.SETTING_NAMES


class SessionBody(BaseModel):
    """The keys and ranges of one target faceset."""

    faceset: str
    keys: list[dict] = []
    ranges: list[dict] = []


def _settings(request: Request) -> dict:
    return {k: v for k, v in request.query_params.items() if k in SETTING_PARAMS}


def _rules(request: Request, faceset_rel: str) -> list:
    path = tuning.overrides_path(workspace_of(request), faceset_rel)
    return load_overrides(path) if path.is_file() else []


@router.get("/merge")
def merge_page(request: Request) -> FileResponse:
    """The merge tuning page."""
    return FileResponse(request.app.state.static / "merge.html")


@router.get("/api/merge/shot")
def shot(request: Request, model: str, faceset: str) -> dict:
    """Frame count, fps and clip of the target, and the default settings."""
    ws = workspace_of(request)
    info = tuning.shot(folder(request, model, "model folder"), folder(request, faceset, "target faceset"))
    clip = Path(info["clip"]).resolve()
    info["clip"] = relative(ws, clip) if ws in clip.parents else clip.name  # no paths outside the workspace
    return info


@router.get("/api/merge/preview")
def preview(request: Request, model: str, faceset: str, frame: int) -> Response:
    """Frame `frame` swapped with the query's settings over the saved ones, marked (render_preview)."""
    if frame < 0:
        raise InputError("frame must be >= 0")
    png = tuning.preview_png(folder(request, model, "model folder"), folder(request, faceset, "target faceset"),
                             frame, _settings(request), workspace_of(request), _rules(request, faceset))
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/api/merge/plate")
def plate(request: Request, model: str, faceset: str, frame: int) -> Response:
    """The untouched target frame (the wipe's "before")."""
    if frame < 0:
        raise InputError("frame must be >= 0")
    jpeg = tuning.plate_jpeg(folder(request, model, "model folder"), folder(request, faceset, "target faceset"),
                             frame)
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=600"})


@router.get("/api/merge/session")
def session(request: Request, faceset: str) -> dict:
    """Saved keys, ranges and the overrides file of a target faceset."""
    folder(request, faceset, "target faceset")
    return tuning.load_session(workspace_of(request), faceset)


@router.get("/api/merge/effective")
def effective(request: Request, faceset: str, frame: int) -> dict:
    """The settings frame `frame` gets from the saved overrides."""
    return tuning.effective(_rules(request, faceset), frame)


@router.post("/api/merge/session")
def save_session(request: Request, body: SessionBody) -> dict:
    """Write the overrides file (`merge --overrides`) from the keys and ranges."""
    folder(request, body.faceset, "target faceset")
    return tuning.save_session(workspace_of(request), body.faceset, body.keys, body.ranges)
