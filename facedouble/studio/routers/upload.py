"""Clip upload route: the raw body streamed into WORKSPACE/clips (the guard caps and counts its size)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.requests import ClientDisconnect

from facedouble.errors import InputError
from facedouble.studio import uploads
from facedouble.studio.routers.common import workspace_of

router = APIRouter()


@router.post("/api/upload")
async def upload(request: Request, name: str) -> dict:
    """Store the body as clips/<safe name>; 400 for a bad name, an existing clip or a cut upload."""
    length = int(request.headers.get("content-length", "0"))
    try:
        path = await uploads.receive_clip(workspace_of(request), name, request.stream(), length)
    except ClientDisconnect:
        raise InputError("upload interrupted") from None
    return {"clip": path}
