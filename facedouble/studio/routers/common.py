"""What every router needs: the workspace and job runner of the app, and checked workspace paths."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request

from facedouble.errors import InputError
from facedouble.studio.jobs import JobRunner
from facedouble.studio.paths import inside


def workspace_of(request: Request) -> Path:
    """The app's workspace folder."""
    return request.app.state.workspace


def runner_of(request: Request) -> JobRunner:
    """The app's job runner."""
    return request.app.state.runner


def folder(request: Request, rel: str, what: str = "folder") -> Path:
    """An existing folder inside the workspace."""
    path = inside(workspace_of(request), rel)
    if not path.is_dir():
        raise InputError(f"{what} not found: {rel}")
    return path
