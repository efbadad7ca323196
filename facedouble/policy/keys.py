"""Workspace secrets: random keys in `<workspace>/keys/`, created with mode 0600 and never printed.

`state.key` seals the consent carried inside model checkpoints (facedouble.consent.seal); `watermark.key`
keys the invisible watermark (facedouble.trust.watermark). A key is 32 random bytes stored as hex. Files
are created with `os.open(..., O_CREAT | O_EXCL, 0o600)`, so they are never readable by others, not even
for an instant; an existing key is never overwritten (two processes racing to create one both end with
the first one's key). This module imports nothing else of facedouble.trust, so the training gate can use
it however the rest of the trust package is installed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from facedouble.errors import InputError, PolicyError

KEYS_DIR = "keys"
KEY_BYTES = 32


def workspace_path(workspace: str | Path | None) -> Path:
    """The workspace folder: the given one, else FACEDOUBLE_WORKSPACE, else ./facedouble-workspace."""
    if workspace is not None:
        return Path(workspace)
    return Path(os.environ.get("FACEDOUBLE_WORKSPACE") or "facedouble-workspace")


def write_private(path: str | Path, data: bytes) -> Path:
    """Create `path` with mode 0600 from the start and write `data`; FileExistsError if it exists."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def read_key(path: str | Path) -> bytes:
    """The key in `path`; InputError if it is not a key file (never echoes its content)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii").strip()
        key = bytes.fromhex(text)
    except (OSError, UnicodeDecodeError, ValueError):
        raise InputError(f"{path} is not a readable facedouble key file") from None
    if len(key) < 16:
        raise InputError(f"{path} is not a facedouble key file (too short)")
    return key


def key_path(workspace: str | Path | None, name: str) -> Path:
    """Where the workspace keeps key `name`."""
    return workspace_path(workspace) / KEYS_DIR / f"{name}.key"


def workspace_key(workspace: str | Path | None, name: str, create: bool = False) -> bytes:
    """Key `name` of the workspace; made (0600) when `create` and missing, else PolicyError when missing."""
    path = key_path(workspace, name)
    if not path.exists():
        if not create:
            raise PolicyError(f"the workspace has no {name} key ({path}); it is made when a model is trained "
                              "or a render is marked in this workspace")
        with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
            write_private(path, secrets.token_hex(KEY_BYTES).encode("ascii") + b"\n")
    return read_key(path)
