"""Mask editor routes: list faces, one face's labels, the predicted mask overlay, save labels."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel

from facedouble.errors import InputError
from facedouble.studio import maskedit
from facedouble.studio.routers.common import folder

router = APIRouter()


class LabelsBody(BaseModel):
    """Labels of one face; `labels` None clears them."""

    faceset: str
    name: str
    labels: dict | None = None


@router.get("/mask")
def mask_page(request: Request) -> FileResponse:
    """The editor page."""
    return FileResponse(request.app.state.static / "mask.html")


@router.get("/api/mask/faces")
def faces(request: Request, faceset: str) -> dict:
    """Every face with its labelled / predicted flags."""
    return maskedit.listing(folder(request, faceset, "faceset"))


@router.get("/api/mask/face")
def face(request: Request, faceset: str, name: str) -> dict:
    """One face's labels and neighbours."""
    return maskedit.face(folder(request, faceset, "faceset"), name)


@router.get("/api/mask/predicted")
def predicted(request: Request, faceset: str, name: str) -> Response:
    """The predicted mask as a green RGBA overlay; 404 when the face has none."""
    png = maskedit.predicted_png(folder(request, faceset, "faceset"), name)
    if png is None:
        raise InputError(f"no predicted mask for {name} (run `facedouble mask apply`) - not found")
    return Response(png, media_type="image/png")


@router.post("/api/mask/labels")
def save_labels(request: Request, body: LabelsBody) -> dict:
    """Store one face's labels in its image (the schema of `mask label import`)."""
    return maskedit.save(folder(request, body.faceset, "faceset"), body.name, body.labels)
