"""Atomic file writes: write to a temporary file beside the target, then rename over it."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from facedouble.errors import FacedoubleError

_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def storage_error(path: str | os.PathLike[str], exc: OSError) -> FacedoubleError | None:
    """The one-line error for a full or read-only disk while writing `path`; None for other OS errors."""
    if exc.errno in _FULL:
        return FacedoubleError(f"no space left on the device writing {path}; finished work is kept, "
                               "free some space and re-run to resume")
    if exc.errno == errno.EROFS:
        return FacedoubleError(f"cannot write {path}: the file system is read-only")
    return None


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a binary temp file beside `path`; it replaces `path` only if the block finishes."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        if (error := storage_error(path, exc)) is not None:
            raise error from None
        raise
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and (error := storage_error(path, exc)) is not None:
            raise error from None  # the target keeps its previous content; the temp file is gone
        raise


def remove_temps(folder: str | os.PathLike[str], name: str | None = None) -> int:
    """Delete the temporary files interrupted writes left in `folder` (of the file `name` only, if given);
    returns how many. A kill -9 mid-write leaves `.NAME.XXXXXXXX.tmp*` behind; call this only while holding
    the folder's output lock, so no live writer's temp file is taken."""
    prefix = f".{name}." if name is not None else "."
    removed = 0
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(folder):
            if entry.name.startswith(prefix) and (entry.name.endswith(".tmp") or ".tmp." in entry.name) \
                    and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed += 1
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_open(path) as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 `text` to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write `obj` as indented JSON to `path` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
