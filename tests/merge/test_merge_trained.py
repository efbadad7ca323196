"""Merge with a real (tiny) model trained in seconds by the train stage, through `--model MODEL_DIR`."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facedouble.io.video import open_source


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, grid_faceset) -> Path:
    """A workspace with a consent record for the GRID speaker of pwij3p (their faces as its reference) and a
    test signer."""
    from facedouble.consent.records import add_identity
    from facedouble.trust.c2pa_sign import init_test_ca

    ws = tmp_path_factory.mktemp("ws")
    release = ws / "release.pdf"
    release.write_bytes(b"signed release of the GRID speaker (test)")
    add_identity(ws, "grid-speaker-2", release, scope="facedouble tests",
                 reference=grid_faceset("pwij3p", 64, "full"))
    init_test_ca(ws / "certs")
    return ws


@pytest.fixture(scope="module")
def tiny_model(grid_faceset, target, workspace, tmp_path_factory) -> Path:
    """The train stage's `tiny` preset, src = GRID pwij3p (bound to its consent record), a few iterations."""
    import shutil

    from facedouble.consent.records import bind_faceset
    from facedouble.train.trainer import Trainer
    from tests.train.conftest import FAST

    src = tmp_path_factory.mktemp("src") / "faces"
    shutil.copytree(grid_faceset("pwij3p", 64, "full"), src)
    bind_faceset(workspace, "grid-speaker-2", src)
    model_dir = tmp_path_factory.mktemp("tiny") / "model"
    Trainer.create(model_dir, src, target[0], "tiny", train_overrides={**FAST, "max_iters": 4},
                   workspace=workspace).run()
    return model_dir


def test_cli_merge_with_a_trained_model(tiny_model, target, target_frames, workspace, tmp_path, capsys):
    import facedouble.cli as cli
    from facedouble.train.swapper import load_swapper
    from facedouble.trust.c2pa_sign import read_manifest
    from facedouble.trust.record import read_embedded, sidecar_path

    out = tmp_path / "render.mp4"
    code = cli.main(["merge", "--model", str(tiny_model), "--target", str(target[0]), "--out", str(out),
                     "--png-dir", str(tmp_path / "png"), "--matte-dir", str(tmp_path / "matte"), "--no-progress",
                     "--workspace", str(workspace)])
    assert code == 0, capsys.readouterr().err
    # provenance: record beside and inside, consent hash carried from the model, C2PA signed as the last step
    record = read_embedded(out)
    assert record is not None and record["synthetic"] is True
    assert record["identity"]["name"] == "grid-speaker-2" and len(record["identity"]["consent_record_sha256"]) == 64
    assert sidecar_path(out).exists()
    assert read_manifest(out)["status"] == "valid"
    assert read_manifest(tmp_path / "png" / "000000.png")["status"] == "valid"
    assert [f.timestamp for f in open_source(out)] == pytest.approx([f.timestamp for f in open_source(target[1])])
    for index in (0, 37, 74):
        image = cv2.cvtColor(cv2.imread(str(tmp_path / "png" / f"{index:06d}.png")), cv2.COLOR_BGR2RGB)
        matte = cv2.imread(str(tmp_path / "matte" / f"{index:06d}.png"), cv2.IMREAD_UNCHANGED)
        # far from the face nothing changes. Near it the watermark may: it marks the aligned face square
        # (forehead to chin), which a 4-iteration model's learned mask (so the matte's box) does not bound;
        # the matte's box grown by 3/4 on each side covers it (by 1/2 missed by a row on an AVX2 CPU)
        ys, xs = np.nonzero(matte)
        h, w = ys.max() - ys.min(), xs.max() - xs.min()
        outside = np.ones(matte.shape, bool)
        outside[max(0, ys.min() - 3 * h // 4):ys.max() + 3 * h // 4,
                max(0, xs.min() - 3 * w // 4):xs.max() + 3 * w // 4] = False
        assert outside.sum() > 10_000  # the check still covers a good part of the frame
        assert np.array_equal(image[outside], target_frames[index][outside])
        assert (matte > 0).sum() > 1000  # the model's learned mask times the hull covers the face
    assert load_swapper(tiny_model).resolution > 0
