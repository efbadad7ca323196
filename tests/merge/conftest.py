"""Merge fixtures: real GRID facesets (from the extract fixture) and the stand-in swapper."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facedouble.merge.standin import ShiftSwapper

CLIP = "bbaf2n"


@pytest.fixture(scope="session")
def target(grid_faceset, grid_clip) -> tuple[Path, Path]:
    """(faceset folder, clip path) of a real GRID clip, extracted once per session."""
    return grid_faceset(CLIP, size=64, face_type="full"), grid_clip(CLIP)


@pytest.fixture()
def model() -> ShiftSwapper:
    """Stand-in model with the Swapper interface: input face, colour-shifted, elliptical mask."""
    return ShiftSwapper(resolution=96, face_type="full")


@pytest.fixture(scope="session")
def target_frames(target) -> list[np.ndarray]:
    """Decoded RGB frames of the target clip."""
    from facedouble.io.video import open_source

    return [f.image for f in open_source(target[1])]



CONSENT = {"name": "test-performer", "record_hash": "ab" * 32}


def consented(swapper):
    """A stand-in model carrying a consent record, as a trained model does."""
    swapper.consent = dict(CONSENT)
    return swapper


@pytest.fixture()
def signing_workspace(tmp_path, monkeypatch):
    """A workspace with a test signer (`certs init`), made the CLI's default workspace."""
    from facedouble.trust.c2pa_sign import init_test_ca

    workspace = tmp_path / "ws"
    init_test_ca(workspace / "certs")
    monkeypatch.setenv("FACEDOUBLE_WORKSPACE", str(workspace))
    return workspace
