"""Reliability fixtures: a small file system for disk-full drills, and a read-only folder."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest


def _mount(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


class Volume:
    """A small volume: a real 20 MB tmpfs where mounting is allowed (root), else an injected quota.

    `fill(leave)` leaves about `leave` bytes free; `free()` gives the space back. With the injected quota
    (no mount permission) only writes through facedouble.io.atomic see the limit, so checks of writers in
    other processes (merge's encoder) are skipped.
    """

    def __init__(self, root: Path, real: bool, monkeypatch: pytest.MonkeyPatch):
        self.root, self.real = root, real
        self._ballast = root / ".ballast"
        self._budget: list[int | None] = [None]
        if not real:
            self._inject(monkeypatch)

    def _inject(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import facedouble.io.atomic as atomic

        budget, real_fdopen = self._budget, os.fdopen

        class Limited:
            def __init__(self, handle):
                self._h = handle

            def write(self, data):
                if budget[0] is not None:
                    if len(data) > budget[0]:
                        raise OSError(errno.ENOSPC, "No space left on device")
                    budget[0] -= len(data)
                return self._h.write(data)

            def __getattr__(self, name):
                return getattr(self._h, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return self._h.__exit__(*exc)

        monkeypatch.setattr(atomic.os, "fdopen", lambda fd, *a, **k: Limited(real_fdopen(fd, *a, **k)))

    def fill(self, leave: int) -> None:
        """Use up the space but about `leave` bytes."""
        if not self.real:
            self._budget[0] = leave
            return
        stat = os.statvfs(self.root)
        size = max(0, stat.f_bavail * stat.f_frsize - leave)
        with open(self._ballast, "ab") as handle, contextlib.suppress(OSError):
            handle.write(b"\0" * size)

    def free(self) -> None:
        """Give the space back (the user deleted something)."""
        self._budget[0] = None
        self._ballast.unlink(missing_ok=True)


@pytest.fixture()
def volume(tmp_path, monkeypatch):
    """volume(size_mb) -> a small Volume of that size (see Volume); unmounted after the test."""
    mounted: list[Path] = []

    def make(size_mb: int = 20) -> Volume:
        root = tmp_path / f"vol{len(mounted)}"
        real = _mount(root, f"size={size_mb}m")
        if real:
            mounted.append(root)
        return Volume(root, real, monkeypatch)

    yield make
    for root in mounted:
        _umount(root)


@pytest.fixture()
def small_volume(volume):
    """A 20 MB volume (see Volume)."""
    return volume(20)


@pytest.fixture()
def read_only_dir(tmp_path):
    """A read-only folder: a read-only tmpfs as root, else a folder without write permission."""
    path = tmp_path / "ro"
    if _mount(path, "size=1m,ro"):
        yield path
        _umount(path)
        return
    path.mkdir(exist_ok=True)
    path.chmod(0o555)
    if os.access(path, os.W_OK):
        pytest.skip("cannot make a read-only folder here (root without mount permission)")
    yield path
    path.chmod(0o755)
