"""Output locks: one process at a time writes a faceset folder, a merge output or a model folder.

The lock is an flock on a small file; the kernel drops it when the process ends, however it ends (kill -9
included), so a crash never leaves a stale lock. Taking the lock also proves the folder is writable, so a
read-only output is refused before any work. Locks are re-entrant within a process (merge's finalize runs
inside merge), and a shared mode lets merge shards render into one work folder side by side while a full
run or a concat excludes them.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
from pathlib import Path
from types import TracebackType

from facedouble.errors import FacedoubleError

_held: dict[tuple[str, bool], list] = {}  # (resolved path, shared) -> [open lock file, holders]
_held_guard = threading.Lock()


class OutputLockedError(FacedoubleError):
    """Another process holds the lock on this output."""


def check_writable(folder: str | Path) -> Path:
    """Create `folder` if needed; FacedoubleError (one line) if it or its parent is read-only."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise FacedoubleError(f"cannot create output folder {folder}: its parent is read-only; choose a "
                                  "writable folder") from None
        raise FacedoubleError(f"cannot create output folder {folder}: {exc.strerror or exc}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise FacedoubleError(f"output folder {folder} is read-only; choose a writable folder")
    return folder


class OutputLock:
    """Exclusive (or shared) lock on `lock_path`, for the stage named `what` (used in the error message).

    Raises OutputLockedError when another process holds it, FacedoubleError when the folder is read-only.
    Use as a context manager or call release(); re-taking a lock this process holds only counts up, unless
    `reentrant` is False: then a second holder in this process is refused like another process (two
    trainers in one process must not share a model folder). `hint` ends the "in use" message.
    """

    def __init__(self, lock_path: str | Path, what: str, shared: bool = False, *, reentrant: bool = True,
                 hint: str = "wait for it to finish or stop it first"):
        self.path = Path(lock_path)
        self.what, self.shared, self.hint = what, shared, hint
        self._key = (str(self.path.resolve()), shared)
        self._released = False
        self._own = None  # the lock file of a non-reentrant lock (kept out of the shared registry)
        if not reentrant:
            self._own = self._acquire()
            return
        with _held_guard:
            entry = _held.get(self._key)
            if entry is not None:
                entry[1] += 1
            else:
                _held[self._key] = [self._acquire(), 1]

    def _acquire(self):
        check_writable(self.path.parent)
        try:
            handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        except OSError as exc:
            if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise FacedoubleError(f"output folder {self.path.parent} is read-only; choose a writable "
                                      "folder") from None
            raise FacedoubleError(f"cannot lock {self.path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(handle, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise OutputLockedError(f"{self.path.parent} is in use by another {self.what} (pid {holder}); "
                                    f"{self.hint}") from None
        if not self.shared:
            try:  # the holder's pid, for the message another process prints
                handle.seek(0)
                handle.truncate()
                handle.write(str(os.getpid()))
                handle.flush()
            except OSError:  # a full disk must not stop the lock from working
                pass
        return handle

    def release(self) -> None:
        """Give the lock up (also happens when the process exits)."""
        with _held_guard:
            if self._released:
                return
            self._released = True
            if self._own is not None:
                _unlock(self._own)
                return
            entry = _held[self._key]
            entry[1] -= 1
            if entry[1] == 0:
                del _held[self._key]
                _unlock(entry[0])

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def _unlock(handle) -> None:
    if not handle.closed:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def lock_path_for(output: str | Path) -> Path:
    """The lock file of an output file or folder: a hidden file beside it (survives `--fresh` wiping it)."""
    output = Path(output)
    return output.parent / f".{output.name}.lock"


def part_locks(output: str | Path, what: str, part: tuple[int, int] = (1, 1)) -> list[OutputLock]:
    """Locks for writing part `part` = (k, n) of `output`: the whole (1/1) is exclusive; a part holds the
    whole shared and its own part exclusively, so parts run side by side but never beside a whole run."""
    base = lock_path_for(output)
    if tuple(part) == (1, 1):
        return [OutputLock(base, what)]
    whole = OutputLock(base, what, shared=True)
    try:
        own = OutputLock(base.with_name(f"{base.stem}.part-{part[0]}-of-{part[1]}.lock"), f"{what} of part "
                         f"{part[0]}/{part[1]}")
    except BaseException:
        whole.release()
        raise
    return [whole, own]
