"""Shared fixtures of the mask tests: a small GRID faceset with mask labels."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from facedouble.face.mesh import FACE_OVAL
from facedouble.faceset import Faceset
from facedouble.mask import FaceLabels, write_labels

# a segmenter training that is fast and deterministic in a test
CFG = dict(batch_size=2, workers=0, threads=1, save_every_min=1e6, preview_every_min=1e6, bf16=False)


def oval_labels(meta, hole: bool) -> FaceLabels:
    """The mesh face oval, with a mouth-sized box cut out on some faces (an occluder)."""
    mesh = meta.mesh @ meta.transform[:, :2].T + meta.transform[:, 2]
    exclude = []
    if hole:
        c = meta.aligned_landmarks[48:68].mean(0)
        exclude = [np.array([c + (-10, -5), c + (10, -5), c + (10, 8), c + (-10, 8)])]
    return FaceLabels([mesh[list(FACE_OVAL)]], exclude)


@pytest.fixture()
def labelled(tmp_path, grid_faceset):
    folder = tmp_path / "fs"
    shutil.copytree(grid_faceset("bbaf2n", embed_every=5), folder)
    for i, (path, meta) in enumerate(Faceset(folder).metas()[:6]):
        write_labels(path, oval_labels(meta, hole=i % 2 == 0))
    return folder
