"""Verify routes: the workspace's media files and the verdict of one (facedouble.trust.verify)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from facedouble.errors import InputError
from facedouble.studio import verifyview
from facedouble.studio.paths import inside
from facedouble.studio.routers.common import workspace_of

router = APIRouter()


@router.get("/verify")
def verify_page(request: Request) -> FileResponse:
    """The verify page."""
    return FileResponse(request.app.state.static / "verify.html")


@router.get("/api/verify/files")
def files(request: Request) -> list[str]:
    """Media files that can be verified, renders first."""
    return verifyview.candidates(workspace_of(request))


@router.get("/api/verify")
def verify(request: Request, path: str) -> dict:
    """The verify report of one workspace file (verdict, exit code, C2PA, watermark, record)."""
    ws = workspace_of(request)
    real = inside(ws, path)
    if not real.is_file():
        raise InputError(f"file not found: {path}")
    return verifyview.verdict(ws, real)
