"""Resolve user-given relative paths strictly inside the workspace (no `..`, no absolute, no symlink escape)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from urllib.parse import unquote

from facedouble.errors import InputError

STUDIO_DIR = ".studio"  # the studio's own state (jobs, thumbnail cache) inside the workspace


def inside(workspace: Path, rel: str) -> Path:
    """The real path of `rel` under `workspace`; InputError for anything that could leave it.

    Checked twice on purpose: the text (absolute, `..` parts, also once more URL-decoded so a double-encoded
    `%2e%2e` is caught) and the resolved path (a symlink inside the workspace pointing outside it).
    """
    root = workspace.resolve()
    text = unquote(rel or "")
    for candidate in (rel or "", text):
        pure = PurePosixPath(candidate.replace("\\", "/"))
        if pure.is_absolute() or ".." in pure.parts or "\x00" in candidate or ":" in candidate.split("/")[0]:
            raise InputError(f"path outside the workspace: {rel!r}")
    real = (root / text).resolve()
    if real != root and root not in real.parents:
        raise InputError(f"path outside the workspace: {rel!r}")
    return real


def relative(workspace: Path, path: Path) -> str:
    """`path` as the workspace-relative POSIX string the API uses."""
    return path.resolve().relative_to(workspace.resolve()).as_posix()
