"""Fixtures for the train tests: real GRID facesets from the project's `grid_faceset` fixture."""

from __future__ import annotations

from pathlib import Path

import pytest

SRC_CLIP, DST_CLIP = "bbaf2n", "lbbc2a"  # two different speakers


@pytest.fixture(scope="session")
def face_dirs(grid_faceset) -> tuple[Path, Path]:
    """(src faceset, dst faceset) at 64 px, full face, extracted from GRID `bbaf2n` and `lbbc2a`."""
    return grid_faceset(SRC_CLIP, 64, "full"), grid_faceset(DST_CLIP, 64, "full")


@pytest.fixture(scope="session")
def face_batch(face_dirs):
    """Four real GRID dst faces, NCHW float32 torch tensor in [0, 1] (for layer-level tests)."""
    import numpy as np
    import torch

    from facedouble.faceset import Faceset

    fs = Faceset(face_dirs[1])
    faces = np.stack([fs.load(p)[0] for p in fs.paths()[:4]])
    return torch.from_numpy(faces).permute(0, 3, 1, 2).float().div(255)


class _Record:
    name = "test-speaker"
    record_hash = "ab" * 32


def install_consent(monkeypatch: pytest.MonkeyPatch, grant: bool = True) -> list:
    """Stand in for facedouble.consent.records (built on another branch): grant or refuse consent.

    Returns the list of (faceset, workspace) calls, so tests can check what was asked.
    """
    import sys
    import types

    from facedouble.errors import PolicyError

    calls: list = []

    def require_consent(faceset_dir: Path, workspace: Path | None = None) -> _Record:
        calls.append((Path(faceset_dir), workspace))
        if not grant:
            raise PolicyError(f"faceset {faceset_dir} is not bound to a consent record")
        return _Record()

    import facedouble.consent  # noqa: F401  the real package: the seal and the pretraining rule use it for real

    module = types.ModuleType("facedouble.consent.records")
    module.require_consent = require_consent  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "facedouble.consent.records", module)
    return calls


@pytest.fixture(autouse=True)
def consent_granted(monkeypatch: pytest.MonkeyPatch) -> list:
    """Every in-process train test runs with consent granted unless it installs a refusal."""
    return install_consent(monkeypatch, grant=True)


FAST = dict(batch_size=2, workers=1, save_every_min=60.0, preview_every_min=60.0)


def train_tiny(model_dir: Path, src: Path, dst: Path, iters: int, **overrides) -> dict:
    """Train (or resume) the tiny preset to `iters` total iterations; returns the run summary."""
    from facedouble.train.trainer import Trainer

    trainer = Trainer.create(model_dir, src, dst, "tiny", train_overrides={**FAST, "max_iters": iters, **overrides})
    return trainer.run()


@pytest.fixture(scope="session")
def trained_model(face_dirs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model trained for a few iterations (consent granted), shared read-only by tests."""
    mp = pytest.MonkeyPatch()
    try:
        install_consent(mp)
        model_dir = tmp_path_factory.mktemp("trained") / "model"
        train_tiny(model_dir, *face_dirs, iters=6)
    finally:
        mp.undo()
    return model_dir


@pytest.fixture(autouse=True)
def _workspace_in_tmp(tmp_path_factory, monkeypatch):
    """Keys and records the trainer writes go to a temporary workspace, never ./facedouble-workspace."""
    monkeypatch.setenv("FACEDOUBLE_WORKSPACE", str(tmp_path_factory.mktemp("workspace")))

