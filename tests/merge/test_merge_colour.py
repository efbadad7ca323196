"""Colour transfers on real GRID faces: each mode moves the masked mean/covariance toward the target."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facedouble.colour import COLOUR_TRANSFERS, get_colour_transfer
from facedouble.colour._stats import mean_cov, weights
from facedouble.errors import FacedoubleError
from facedouble.merge.masks import hull_mask, refine_mask


def _face(grid_faceset, grid_clip, stem: str) -> tuple[np.ndarray, np.ndarray]:
    from facedouble.faceset import Faceset

    folder = grid_faceset(stem, size=64, face_type="full")
    image, meta = Faceset(folder).load(Faceset(folder).paths()[10])
    face = cv2.resize(image, (128, 128), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255.0
    mask = refine_mask(hull_mask(meta.aligned_landmarks * 2.0, 128), 0.0, 3.0)
    return face, mask


@pytest.fixture(scope="module")
def faces(grid_faceset, grid_clip):
    src, mask = _face(grid_faceset, grid_clip, "bbaf2n")
    tgt, _ = _face(grid_faceset, grid_clip, "pwij3p")
    # Make the colour gap large and unmistakable: a warm, contrasty grade on the target.
    tgt = np.clip((tgt - 0.5) * 1.3 + 0.5 + np.array([0.08, 0.0, -0.08], np.float32), 0, 1)
    return src, tgt, mask


@pytest.mark.parametrize("name", [n for n in COLOUR_TRANSFERS if n != "none"])
def test_colour_mode_moves_masked_stats_toward_target(faces, name):
    src, tgt, mask = faces
    w = weights(mask)
    mt, ct = mean_cov(tgt.reshape(-1, 3).astype(np.float64), w)
    ms, cs = mean_cov(src.reshape(-1, 3).astype(np.float64), w)
    out = get_colour_transfer(name)(src, tgt, mask)
    assert out.shape == src.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    mo, co = mean_cov(out.reshape(-1, 3).astype(np.float64), w)
    assert np.linalg.norm(mo - mt) < 0.5 * np.linalg.norm(ms - mt)
    assert np.linalg.norm(co - ct) < 0.7 * np.linalg.norm(cs - ct)


def test_colour_transfer_ignores_pixels_outside_the_mask(faces):
    src, tgt, mask = faces
    wild = tgt.copy()
    wild[mask == 0] = [1.0, 0.0, 1.0]  # magenta background must not change the result
    for name in ("rct", "lct", "mkl"):
        a = get_colour_transfer(name)(src, tgt, mask)
        b = get_colour_transfer(name)(src, wild, mask)
        assert np.abs(a - b).max() < 1e-4, name


def test_none_is_identity_and_unknown_name_is_a_one_line_error(faces):
    src, tgt, mask = faces
    assert get_colour_transfer("none")(src, tgt, mask) is src
    with pytest.raises(FacedoubleError, match="unknown colour transfer 'bogus'"):
        get_colour_transfer("bogus")
