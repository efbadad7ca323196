"""Clip upload into WORKSPACE/clips: a safe file name, a size cap, streamed to a temp file, renamed at the end."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from facedouble.errors import InputError
from facedouble.studio.paths import inside
from facedouble.studio.workspace import CLIP_SUFFIXES

CLIPS_DIR = "clips"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME = 120


def safe_name(name: str) -> str:
    """A plain file name from what the browser sent: no folders, no leading dots, only [A-Za-z0-9._-]."""
    base = re.split(r"[\\/]", name or "")[-1]
    stem, dot, ext = base.rpartition(".")
    if not dot or f".{ext.lower()}" not in CLIP_SUFFIXES:
        raise InputError(f"not a clip name (expected one of {', '.join(CLIP_SUFFIXES)}): {name!r}")
    stem = _SAFE.sub("_", stem).strip("._-")[:MAX_NAME] or "clip"
    return f"{stem}.{ext.lower()}"


async def receive_clip(workspace: Path, name: str, chunks: AsyncIterator[bytes], length: int) -> str:
    """Write the streamed body to WORKSPACE/clips/<safe name>; refuses to overwrite; returns the relative path.

    The bytes go to a hidden temp file beside the target and are renamed into place only when exactly
    `length` arrived, so a cut connection or an over-long body leaves no clip behind.
    """
    final = inside(workspace, f"{CLIPS_DIR}/{safe_name(name)}")
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        raise InputError(f"{CLIPS_DIR}/{final.name} already exists")
    tmp = final.parent / f".upload-{secrets.token_hex(6)}.part"
    got = 0
    try:
        with open(tmp, "xb") as f:
            async for chunk in chunks:
                got += len(chunk)
                if got > length:
                    raise InputError("upload is longer than its Content-Length")
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        if got != length:
            raise InputError(f"upload cut short ({got} of {length} bytes)")
        os.link(tmp, final)  # fails if a clip of that name appeared meanwhile: never overwrites
    finally:
        tmp.unlink(missing_ok=True)
    return f"{CLIPS_DIR}/{final.name}"
