"""A faceset is a folder of face images; the files are the index (delete a file, the face is gone)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from facedouble.errors import InputError
from facedouble.faceset.meta import FaceMeta, read_face, read_meta

FACE_SUFFIXES = (".png", ".jpg", ".jpeg")
REJECTS_DIR = "_rejected"


class Faceset:
    """Read access to a faceset folder, with a metadata cache keyed by (path, mtime, size)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(f"faceset folder not found: {self.folder}")
        self._cache: dict[Path, tuple[tuple[float, int], FaceMeta]] = {}

    def paths(self) -> list[Path]:
        """Face image paths, sorted by name (names sort by source and frame)."""
        return sorted(p for p in self.folder.iterdir()
                      if p.suffix.lower() in FACE_SUFFIXES and not p.name.startswith("."))

    def __len__(self) -> int:
        return len(self.paths())

    def meta(self, path: Path) -> FaceMeta:
        """Validated metadata of one face (cached while the file is unchanged)."""
        stat = path.stat()
        key = (stat.st_mtime, stat.st_size)
        hit = self._cache.get(path)
        if hit and hit[0] == key:
            return hit[1]
        meta = read_meta(path)
        self._cache[path] = (key, meta)
        return meta

    def metas(self) -> list[tuple[Path, FaceMeta]]:
        """(path, metadata) for every face."""
        return [(p, self.meta(p)) for p in self.paths()]

    def load(self, path: Path) -> tuple[np.ndarray, FaceMeta]:
        """Pixels (RGB uint8) and metadata of one face."""
        return read_face(path)

    def __iter__(self) -> Iterator[tuple[np.ndarray, FaceMeta]]:
        for path in self.paths():
            yield read_face(path)
