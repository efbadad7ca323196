"""Shared fixtures: the real GRID footage in ../shared/data/grid and facesets extracted from it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GRID_DIR = Path(os.environ.get("FACEDOUBLE_GRID_DIR", ROOT.parent / "shared" / "data" / "grid"))
GRID_CLIPS = ("bbaf2n", "id2_vcd_swwp2s", "lbbc2a", "lrwp9a", "lwbsza", "pwij3p", "sbia1a", "sbwe5n", "swiz3n")
SAME_PERSON = ("id2_vcd_swwp2s", "pwij3p")


def grid_path(stem: str) -> Path:
    """Path of a GRID clip; skips the test when the shared footage is missing."""
    path = GRID_DIR / f"{stem}.mpg"
    if not path.exists():
        pytest.skip(f"GRID footage not found at {GRID_DIR} (expected ../shared/data/grid beside the repo)")
    return path


@pytest.fixture(scope="session")
def grid_clip() -> Callable[[str], Path]:
    """grid_clip(stem) -> Path of the real clip."""
    return grid_path


@pytest.fixture(scope="session")
def grid_faceset(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """grid_faceset(stem, size=64, face_type="full") -> faceset folder, extracted once per session."""
    from facedouble.extract.pipeline import ExtractConfig, extract

    cache: dict[tuple, Path] = {}

    def make(stem: str, size: int = 64, face_type: str = "full", **overrides) -> Path:
        key = (stem, size, face_type, tuple(sorted(overrides.items())))
        if key not in cache:
            out = tmp_path_factory.mktemp(f"faceset_{stem}_{size}_{face_type}")
            extract(grid_path(stem), out, ExtractConfig(size=size, face_type=face_type, progress=False, **overrides))
            cache[key] = out
        return cache[key]

    return make


CROWD_CLIPS = ("bbaf2n", "lbbc2a", "lrwp9a", "sbia1a", "swiz3n")  # five different GRID speakers


@pytest.fixture(scope="session")
def crowd_faceset(grid_faceset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One 64 px faceset of five GRID speakers' faces (a pretrain faceset: see facedouble.train.pretrain)."""
    import shutil

    from facedouble.faceset import Faceset

    out = tmp_path_factory.mktemp("faceset_crowd")
    for stem in CROWD_CLIPS:
        source = grid_faceset(stem, 64, "full")
        for path in Faceset(source).paths():
            shutil.copy2(path, out / f"{stem}_{path.name}")
    return out
