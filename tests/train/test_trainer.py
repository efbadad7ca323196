"""Training on real GRID faces: it learns, bf16 works, consent is enforced, Ctrl-C saves."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from facedouble.errors import FacedoubleError, PolicyError
from facedouble.nn import checkpoint as ck
from facedouble.train.data import FaceBank
from facedouble.train.optim import compiler_available
from facedouble.train.trainer import Trainer, reconstruction_ssim
from tests.train.conftest import FAST, install_consent, train_tiny

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def split_dst(face_dirs, tmp_path_factory) -> tuple[Path, FaceBank]:
    """dst faces for training (first 80% of the clip) and the held-out rest, as a FaceBank."""
    paths = sorted(face_dirs[1].glob("*.png"))
    cut = int(len(paths) * 0.8)
    train_dir = tmp_path_factory.mktemp("dst_train")
    for p in paths[:cut]:
        shutil.copy(p, train_dir)
    return train_dir, FaceBank(face_dirs[1], 64, "full", paths[cut:])


def test_tiny_model_learns_on_grid_faces(face_dirs, split_dst, tmp_path: Path) -> None:
    """60 iterations (~20-60 s on 2 quiet cores) lower the loss and raise held-out masked SSIM measurably.

    The wall-clock cap is generous because the CI machine is shared; the work is fixed by max_iters.
    """
    dst_train, held = split_dst
    trainer = Trainer.create(tmp_path / "m", face_dirs[0], dst_train, "tiny",
                             train_overrides={**FAST, "batch_size": 4, "max_iters": 60, "max_minutes": 2.5})
    before = reconstruction_ssim(trainer.model, held.images, 64, masks=held.masks)
    summary = trainer.run()
    after = reconstruction_ssim(trainer.model, held.images, 64, masks=held.masks)
    hist = np.array(ck.load_state(tmp_path / "m")["loss_history"])
    assert summary["iteration"] >= 40, f"only {summary['iteration']} iterations in 2.5 min (machine overloaded?)"
    first, last = hist[:10, 1:].sum(1).mean(), hist[-10:, 1:].sum(1).mean()
    assert last < 0.75 * first, (first, last)
    assert after > before + 0.02, (before, after)


def test_bf16_autocast_trains_with_fp32_master_weights(face_dirs, tmp_path: Path) -> None:
    result = train_tiny(tmp_path / "m", *face_dirs, iters=3, bf16=True)
    assert np.isfinite(result["loss"]).all()
    weights = ck.load_checkpoint(tmp_path / "m").weights
    assert all(w.dtype == torch.float32 for w in weights.values())


def test_training_requires_consent_for_src(face_dirs, tmp_path: Path, monkeypatch) -> None:
    install_consent(monkeypatch, grant=False)
    with pytest.raises(PolicyError, match="consent"):
        train_tiny(tmp_path / "m", *face_dirs, iters=1)
    assert not (tmp_path / "m").exists()


def test_consent_record_is_saved_with_the_model(face_dirs, tmp_path: Path, monkeypatch) -> None:
    calls = install_consent(monkeypatch, grant=True)
    from facedouble.train.trainer import Trainer

    Trainer.create(tmp_path / "m", face_dirs[0], face_dirs[1], "tiny", train_overrides={**FAST, "max_iters": 1},
                   workspace=tmp_path / "ws").run()
    assert calls == [(face_dirs[0], tmp_path / "ws")]  # the src faceset is the one checked
    assert ck.load_state(tmp_path / "m")["consent"] == {"name": "test-speaker", "record_hash": "ab" * 32}


def test_model_shape_cannot_change_on_resume(trained_model: Path, face_dirs) -> None:
    with pytest.raises(FacedoubleError, match="cannot change"):
        Trainer.create(trained_model, *face_dirs, "tiny", model_overrides={"ae_dims": 128})


def test_pretrain_needs_no_dst_but_cannot_swap(crowd_faceset, tmp_path: Path, monkeypatch) -> None:
    install_consent(monkeypatch, grant=False)  # pretraining does not ask (on a faceset of many people)
    train_tiny(tmp_path / "m", crowd_faceset, None, iters=1, pretrain=True)
    from facedouble.train.swapper import load_swapper

    with pytest.raises(PolicyError, match="pretrained"):
        load_swapper(tmp_path / "m")


def test_ctrl_c_saves_before_exit(crowd_faceset, tmp_path: Path) -> None:
    model = tmp_path / "m"
    log = tmp_path / "stderr.txt"
    cmd = [sys.executable, str(REPO / "tests" / "train" / "train_cli.py"), "train", "--src", str(crowd_faceset),
           "--model", str(model), "--preset", "tiny", "--pretrain", "--batch-size", "2", "--workers", "0"]
    with open(log, "wb") as err:
        # started with SIGINT ignored, as a background job of a shell script is (`facedouble train ... &`):
        # Ctrl-C, api.train_stop and the studio's cancel must still save and stop it
        proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=err,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        try:
            deadline = time.monotonic() + 240
            while b"iter " not in log.read_bytes():  # the progress line: training is under way
                assert proc.poll() is None, log.read_text()[-2000:]
                assert time.monotonic() < deadline
                time.sleep(0.3)
            proc.send_signal(signal.SIGINT)
            rc = proc.wait(timeout=120)
        finally:  # a failed test leaves no trainer running
            if proc.poll() is None:
                proc.kill()
    assert rc == 130, log.read_text()[-2000:]
    assert ck.load_state(model)["iteration"] >= 1


@pytest.mark.slow
def test_torch_compile_trains_like_eager_and_saves_plain_weights(face_dirs, tmp_path: Path) -> None:
    """`--compile` (inductor, C++ on the CPU): same losses as eager from the same seed, same checkpoint format."""
    from facedouble.train.swapper import load_swapper

    eager = train_tiny(tmp_path / "eager", *face_dirs, iters=2)
    compiled = train_tiny(tmp_path / "compiled", *face_dirs, iters=2, compile=True)
    assert compiled["iteration"] == 2
    a = ck.load_state(tmp_path / "eager")["loss_history"]
    b = ck.load_state(tmp_path / "compiled")["loss_history"]
    np.testing.assert_allclose(np.array(b)[:, 1:], np.array(a)[:, 1:], rtol=1e-3)
    assert np.isfinite(eager["loss"]).all()
    weights = ck.load_checkpoint(tmp_path / "compiled").weights
    assert not any(k.startswith("_orig_mod") for k in weights)  # the module, not the compiled wrapper
    load_swapper(tmp_path / "compiled")


def test_optimizer_step_is_compiled_only_for_long_sessions(face_dirs, tmp_path: Path, monkeypatch) -> None:
    from facedouble.train import optim

    monkeypatch.setattr(optim, "compiler_available", lambda: True)
    for name, overrides, kernel in (("open", {}, "compiled"), ("capped", {"max_iters": 100}, "eager"),
                                    ("short", {"max_minutes": 5.0}, "eager"),
                                    ("forced", {"max_iters": 100, "optimizer_kernel": "compiled"}, "compiled")):
        trainer = Trainer.create(tmp_path / name, *face_dirs, "tiny", train_overrides={**FAST, **overrides})
        try:
            assert trainer.opt.kernel == kernel, name
        finally:
            trainer.close()
    with pytest.raises(FacedoubleError, match="unknown optimizer kernel"):
        Trainer.create(tmp_path / "bad", *face_dirs, "tiny", train_overrides={**FAST, "optimizer_kernel": "fast"})


@pytest.mark.skipif(not compiler_available(), reason="torch.compile needs a C++ compiler")
def test_compiled_model_trains_and_saves_plain_weights(face_dirs, tmp_path: Path) -> None:
    """--compile: the compiled graph trains, and the checkpoint holds the plain module's weights."""
    result = train_tiny(tmp_path / "m", *face_dirs, iters=2, compile=True, optimizer_kernel="compiled")
    assert result["iteration"] == 2 and np.isfinite(result["loss"]).all()
    weights = ck.load_checkpoint(tmp_path / "m").weights
    assert not any(k.startswith("_orig_mod") for k in weights)
    resumed = Trainer.create(tmp_path / "m", *face_dirs, None, train_overrides={**FAST, "max_iters": 3})
    try:
        assert resumed.iteration == 2
        torch.testing.assert_close(resumed.model.state_dict(), weights)
    finally:
        resumed.close()
