"""Merge fixtures: real GRID facesets (from the extract fixture) and the stand-in swapper."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.standin import ShiftSwapper

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
    from facedouble.consent.records import add_identity
    from facedouble.trust.c2pa_sign import init_test_ca

    workspace = tmp_path / "ws"
    init_test_ca(workspace / "certs")
    # merge re-checks the model's consent against the workspace's record: the stand-in carries this one.
    release = tmp_path / "release.txt"
    release.write_text("signed release of the test performer\n")
    record = add_identity(workspace, CONSENT["name"], release)
    from tests.merge import conftest as imported  # tests import `consented` as tests.merge.conftest

    for consent in {id(CONSENT): CONSENT, id(imported.CONSENT): imported.CONSENT}.values():
        monkeypatch.setitem(consent, "record_hash", record.record_hash)
    monkeypatch.setenv("FACEDOUBLE_WORKSPACE", str(workspace))
    return workspace
