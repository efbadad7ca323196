"""Merge with a real (tiny) model trained in seconds by the train stage, through `--model MODEL_DIR`."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facedouble.io.video import open_source


@pytest.fixture(scope="module")
def tiny_model(grid_faceset, target, tmp_path_factory) -> Path:
    """The train stage's `tiny` preset, src = GRID pwij3p, dst = the merge target; a few iterations."""
    from tests.train.conftest import install_consent, train_tiny

    mp = pytest.MonkeyPatch()
    try:
        install_consent(mp)  # the consent check belongs to the trust stage; granted here
        model_dir = tmp_path_factory.mktemp("tiny") / "model"
        train_tiny(model_dir, grid_faceset("pwij3p", 64, "full"), target[0], iters=4)
    finally:
        mp.undo()
    return model_dir


def test_cli_merge_with_a_trained_model(tiny_model, target, target_frames, tmp_path, capsys):
    from facedouble import cli
    from facedouble.train.swapper import load_swapper

    out = tmp_path / "render.mp4"
    code = cli.main(["merge", "--model", str(tiny_model), "--target", str(target[0]), "--out", str(out),
                     "--png-dir", str(tmp_path / "png"), "--matte-dir", str(tmp_path / "matte"), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert [f.timestamp for f in open_source(out)] == pytest.approx([f.timestamp for f in open_source(target[1])])
    for index in (0, 37, 74):
        image = cv2.cvtColor(cv2.imread(str(tmp_path / "png" / f"{index:06d}.png")), cv2.COLOR_BGR2RGB)
        matte = cv2.imread(str(tmp_path / "matte" / f"{index:06d}.png"), cv2.IMREAD_UNCHANGED)
        outside = cv2.dilate((matte > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) == 0
        assert np.array_equal(image[outside], target_frames[index][outside])
        assert (matte > 0).sum() > 1000  # the model's learned mask times the hull covers the face
    assert load_swapper(tiny_model).resolution > 0
