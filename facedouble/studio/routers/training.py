"""Training routes: the models of the workspace and one model's loss curve, preview and job."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from facedouble.studio import training
from facedouble.studio.paths import inside
from facedouble.studio.routers.common import runner_of, workspace_of

router = APIRouter()


@router.get("/train")
def train_page(request: Request) -> FileResponse:
    """The training page."""
    return FileResponse(request.app.state.static / "train.html")


@router.get("/api/train/models")
def models(request: Request) -> list[str]:
    """Face model folders (published checkpoints and folders being trained)."""
    return training.model_dirs(workspace_of(request), runner_of(request))


@router.get("/api/train/status")
def status(request: Request, model: str) -> dict:
    """Loss curve, preview, iteration and job of one model folder."""
    ws = workspace_of(request)
    return training.status(ws, runner_of(request), inside(ws, model))
