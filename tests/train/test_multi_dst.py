"""Several --dst facesets (DF): one shared encoder, one decoder per dst identity, the swap still dst -> src.

Real GRID faces: src = bbaf2n, dst = lbbc2a (+ lrwp9a as a second dst identity), tiny preset, a few iterations.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from facedouble.errors import FacedoubleError
from facedouble.faceset import Faceset
from facedouble.nn import checkpoint as ck
from facedouble.train.data import AugmentConfig, BatchSource, FaceBank, dst_split
from facedouble.train.models.presets import build_model, preset
from facedouble.train.trainer import Trainer
from tests.train.conftest import FAST, install_consent
from tests.train.train_cli import main

THIRD_CLIP = "lrwp9a"  # a third GRID speaker


@pytest.fixture(scope="module")
def three_dirs(face_dirs, grid_faceset) -> tuple[Path, Path, Path]:
    """(src, dst, second dst) facesets, 64 px full face, three different speakers."""
    return face_dirs[0], face_dirs[1], grid_faceset(THIRD_CLIP, 64, "full")


def _train(model_dir: Path, src: Path, dst, iters: int, **overrides) -> dict:
    trainer = Trainer.create(model_dir, src, dst, "tiny",
                             train_overrides={**FAST, "batch_size": 3, "max_iters": iters, **overrides})
    return trainer.run()


@pytest.fixture(scope="module")
def multi_model(three_dirs, tmp_path_factory) -> Path:
    """A tiny DF model trained 3 iterations on src + two dst facesets (consent granted)."""
    mp = pytest.MonkeyPatch()
    try:
        install_consent(mp)
        mp.setenv("FACEDOUBLE_WORKSPACE", str(tmp_path_factory.mktemp("workspace")))
        model_dir = tmp_path_factory.mktemp("multi") / "m"
        _train(model_dir, three_dirs[0], list(three_dirs[1:]), 3)
    finally:
        mp.undo()
    return model_dir


def test_dst_split_shares_the_batch() -> None:
    assert dst_split(8, 1) == [8]
    assert dst_split(8, 3) == [3, 3, 2]
    with pytest.raises(FacedoubleError, match="batch size 2 is smaller"):
        dst_split(2, 3)


def test_each_dst_set_is_decoded_by_its_own_decoder(face_batch) -> None:
    torch.manual_seed(0)
    model = build_model(dataclasses.replace(preset("tiny"), dst_count=2)).eval()
    with torch.inference_mode():
        out = model(face_batch[:1], face_batch, dst_split=[3, 1])
        codes = model.inter(model.encoder(face_batch))
        first, _ = model.decoder_dst(codes[:3])
        second, _ = model.decoder_dst_1(codes[3:])
        other, _ = model.decoder_dst(codes[3:])
    torch.testing.assert_close(out["dst_rgb"][:3], first, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out["dst_rgb"][3:], second, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(second, other)  # a different decoder


def test_single_dst_model_has_the_weights_it_always_had() -> None:
    """dst_count 1 builds exactly the old DF (same names, same init), so old checkpoints load unchanged."""
    torch.manual_seed(0)
    model = build_model(preset("tiny"))
    prefixes = {k.split(".")[0] for k in model.state_dict()}
    assert prefixes == {"encoder", "inter", "decoder_src", "decoder_dst"}


def test_batches_draw_each_dst_set_in_turn(three_dirs) -> None:
    src, dst, dst2 = (FaceBank(d, 64, "full") for d in three_dirs)
    one = BatchSource(src, dst, 4, AugmentConfig(), seed=1, workers=0).make(2)
    same = BatchSource(src, [dst], 4, AugmentConfig(), seed=1, workers=0).make(2)
    for key in one:  # a list of one dst bank gives the batches a single bank always gave
        np.testing.assert_array_equal(one[key], same[key])
    both = BatchSource(src, [dst, dst2], 4, AugmentConfig(), seed=1, workers=0)
    batch = both.make(2)
    assert both.split == [2, 2] and batch["dst_target"].shape[0] == 4
    np.testing.assert_array_equal(batch["src_target"], one["src_target"])
    np.testing.assert_array_equal(batch["dst_target"][:2], one["dst_target"][:2])  # set 0: its old stream
    preview = both.make(0, first_dst_only=True)
    assert preview["dst_target"].shape[0] == 4


def test_two_dst_sets_train_save_and_resume(multi_model: Path, three_dirs) -> None:
    loaded = ck.load_checkpoint(multi_model)
    prefixes = {k.split(".")[0] for k in loaded.weights}
    assert prefixes == {"encoder", "inter", "decoder_src", "decoder_dst", "decoder_dst_1"}
    assert loaded.state["model"]["dst_count"] == 2
    assert loaded.state["dsts"] == [str(three_dirs[1]), str(three_dirs[2])]
    assert loaded.state["dst"] == str(three_dirs[1])
    work = multi_model.parent / "resumed"
    import shutil

    shutil.copytree(multi_model, work)
    summary = _train(work, three_dirs[0], list(three_dirs[1:]), 5)
    assert summary["iteration"] == 5 and summary["iterations"] == 2
    assert np.isfinite(summary["loss"]).all()


def test_the_swap_of_a_multi_dst_model_is_dst_to_src(multi_model: Path, three_dirs) -> None:
    from facedouble.train.swapper import load_swapper

    sw = load_swapper(multi_model, precision="fp32", conv_algo="direct")
    fs = Faceset(three_dirs[1])
    faces = np.stack([fs.load(p)[0] for p in fs.paths()[:2]])
    rgb, mask = sw.swap(faces)
    assert rgb.shape == (2, 64, 64, 3) and mask.shape == (2, 64, 64)
    with torch.inference_mode():
        x = torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 255
        want, _ = sw.model.decoder_src(sw.model.inter(sw.model.encoder(x)))
    np.testing.assert_allclose(rgb, want.permute(0, 2, 3, 1).numpy(), atol=1e-4)


def test_resume_with_another_number_of_dst_is_refused(multi_model: Path, three_dirs, capsys) -> None:
    with pytest.raises(FacedoubleError, match="trained with 2 --dst faceset"):
        Trainer.create(multi_model, three_dirs[0], three_dirs[1], None, train_overrides=FAST)
    rc = main(["train", "--src", str(three_dirs[0]), "--dst", str(three_dirs[1]), "--model", str(multi_model)])
    err = capsys.readouterr().err
    assert rc != 0 and "trained with 2 --dst faceset(s), got 1" in err and "Traceback" not in err


def test_old_single_dst_checkpoint_loads_and_resumes(face_dirs, tmp_path: Path) -> None:
    """A checkpoint written before dst_count existed (no such key in its model config) resumes and swaps."""
    model = tmp_path / "old"
    _train(model, *face_dirs, 2)
    ckpt = ck.load_checkpoint(model)
    state = {k: v for k, v in ckpt.state.items() if k not in ("dsts", "format")}
    state["model"] = {k: v for k, v in state["model"].items() if k != "dst_count"}
    ck.save_checkpoint(model, ckpt.weights, ckpt.optimizers, state, aux=ckpt.aux_weights)
    assert "dst_count" not in ck.load_state(model)["model"]
    summary = _train(model, *face_dirs, 4)
    assert summary["iteration"] == 4
    assert ck.load_state(model)["model"]["dst_count"] == 1
    from facedouble.train.swapper import load_swapper

    assert load_swapper(model).model.dst_count == 1


def test_liae_with_several_dst_is_refused(three_dirs, tmp_path: Path, capsys) -> None:
    rc = main(["train", "--src", str(three_dirs[0]), "--dst", str(three_dirs[1]), "--dst", str(three_dirs[2]),
               "--model", str(tmp_path / "m"), "--preset", "saehd-liae-ud-128"])
    err = capsys.readouterr().err
    assert rc != 0 and "need a DF model" in err and "Traceback" not in err
    assert not ck.has_checkpoint(tmp_path / "m")


def test_every_dst_is_checked_and_only_src_needs_consent(three_dirs, tmp_path: Path, monkeypatch) -> None:
    calls = install_consent(monkeypatch)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FacedoubleError, match="no faces"):
        Trainer.create(tmp_path / "m", three_dirs[0], [three_dirs[1], empty], "tiny", train_overrides=FAST)
    assert calls == [(three_dirs[0], None)]  # consent is the src identity's, as with one --dst
    with pytest.raises(FacedoubleError, match="given twice"):
        Trainer.create(tmp_path / "m2", three_dirs[0], [three_dirs[1], three_dirs[1]], "tiny", train_overrides=FAST)
    with pytest.raises(FacedoubleError, match="smaller than the number of --dst"):
        Trainer.create(tmp_path / "m3", three_dirs[0], list(three_dirs[1:]), "tiny",
                       train_overrides={**FAST, "batch_size": 1})
