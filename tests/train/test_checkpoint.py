"""Checkpoints: round trip, exact resume, crash safety (kill -9 mid-write), pruning, tamper detection."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from facedouble.errors import FacedoubleError, InputError
from facedouble.nn import checkpoint as ck
from tests.train.conftest import train_tiny

REPO = Path(__file__).resolve().parents[2]


def test_training_state_round_trips_without_pickle() -> None:
    from facedouble.train.optim import AdaBelief

    p = torch.nn.Parameter(torch.randn(3, 4))
    opts = {"adam": torch.optim.Adam([p], lr=1e-3), "adabelief": AdaBelief([p], lr_dropout=0.5)}
    for opt in opts.values():
        p.grad = torch.randn(3, 4)
        opt.step()
    aux = {"gan": {"w": torch.randn(2, 2)}}
    back, back_aux = ck.training_from_safetensors(
        ck.training_to_safetensors({k: o.state_dict() for k, o in opts.items()}, aux))
    assert torch.equal(back_aux["gan"]["w"], aux["gan"]["w"])
    for name, opt in opts.items():
        sd = opt.state_dict()
        assert back[name]["param_groups"] == json.loads(json.dumps(sd["param_groups"]))
        for k, v in sd["state"][0].items():
            assert torch.equal(torch.as_tensor(back[name]["state"][0][k]), torch.as_tensor(v))
        opt.load_state_dict(back[name])  # torch accepts it


def test_resume_is_exact(face_dirs, tmp_path: Path) -> None:
    """2 + 2 iterations with a save/load in between == 4 iterations straight (weights bit-equal)."""
    opts = dict(lr_dropout=0.5, color_aug=0.3)  # exercise the saved RNG state and the augmentation
    train_tiny(tmp_path / "straight", *face_dirs, iters=4, **opts)
    first = train_tiny(tmp_path / "resumed", *face_dirs, iters=2, **opts)
    assert first["iteration"] == 2
    second = train_tiny(tmp_path / "resumed", *face_dirs, iters=4, **opts)
    assert second["iteration"] == 4 and second["iterations"] == 2  # continued, not restarted
    a, b = ck.load_checkpoint(tmp_path / "straight"), ck.load_checkpoint(tmp_path / "resumed")
    assert a.state["loss_history"] == b.state["loss_history"]
    assert [h[0] for h in b.state["loss_history"]] == list(range(1, 5))
    for k in a.weights:
        assert torch.equal(a.weights[k], b.weights[k]), k
    csv = (tmp_path / "resumed" / "loss.csv").read_text().splitlines()
    assert csv[0] == "iteration,src_loss,dst_loss" and len(csv) == 5
    assert (tmp_path / "resumed" / "preview.png").stat().st_size > 1000


def test_gan_and_true_face_state_is_checkpointed(face_dirs, tmp_path: Path) -> None:
    from facedouble.train.swapper import load_swapper

    opts = dict(gan_power=0.1, true_face_power=0.1)
    train_tiny(tmp_path / "m", *face_dirs, iters=2, **opts)
    c = ck.load_checkpoint(tmp_path / "m")
    assert set(c.aux_weights) == {"gan", "true_face"} and set(c.optimizers) == {"model", "gan", "true_face"}
    assert not any(k.startswith(("gan", "true_face")) for k in c.weights)  # weights = the swap model only
    result = train_tiny(tmp_path / "m", *face_dirs, iters=3, **opts)
    assert result["iteration"] == 3
    after = ck.load_checkpoint(tmp_path / "m").aux_weights["gan"]
    assert any(not torch.equal(after[k], c.aux_weights["gan"][k]) for k in after)  # resumed and trained
    load_swapper(tmp_path / "m")


def test_keep_last_prunes_old_checkpoints(tmp_path: Path) -> None:
    w = {"x": torch.zeros(2)}
    opt = {"model": {"state": {}, "param_groups": [{"lr": 1.0, "params": [0]}]}}
    for i in range(5):
        ck.save_checkpoint(tmp_path, w, opt, {"iteration": i}, keep=2)
    dirs = sorted(p.name for p in tmp_path.glob("ckpt-*"))
    assert len(dirs) == 2 and dirs[-1].startswith("ckpt-000000004")
    assert ck.load_state(tmp_path)["iteration"] == 4


def test_tampered_checkpoint_is_rejected(trained_model: Path, tmp_path: Path) -> None:
    model = tmp_path / "m"
    shutil.copytree(trained_model, model)
    ckpt, _ = ck.checkpoint_dir(model)
    data = bytearray((ckpt / ck.WEIGHTS).read_bytes())
    data[-1] ^= 1
    (ckpt / ck.WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(InputError, match="sha256"):
        ck.load_checkpoint(model)


def test_missing_model_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(FacedoubleError, match="no trained model"):
        ck.load_checkpoint(tmp_path)


KILLER = textwrap.dedent('''
    import sys, time, types
    from pathlib import Path
    sys.path.insert(0, {repo!r})
    # consent granted by a stand-in for facedouble.consent.records, as in the in-process tests
    consent = types.ModuleType("facedouble.consent.records")
    consent.require_consent = lambda faceset, workspace=None: types.SimpleNamespace(
        name="test-speaker", record_hash="ab" * 32)
    import facedouble.consent  # the real package: the consent seal is written before the checkpoint is published
    sys.modules["facedouble.consent.records"] = consent
    import facedouble.nn.checkpoint as ck
    from facedouble.io.atomic import atomic_open
    from tests.train.conftest import train_tiny
    target, marker = {target!r}, Path({marker!r})
    real_bytes, real_json = ck.atomic_write_bytes, ck.atomic_write_json

    def stall(path, data):
        with atomic_open(path) as f:  # half the file written, then frozen until kill -9
            f.write(data[: len(data) // 2]); f.flush()
            marker.touch()
            time.sleep(600)

    def write_bytes(path, data):
        return stall(path, data) if Path(path).name == target else real_bytes(path, data)

    def write_json(path, obj):
        import json
        data = (json.dumps(obj, indent=2, sort_keys=True) + "\\n").encode()
        return stall(path, data) if Path(path).name == target else real_json(path, obj)

    ck.atomic_write_bytes, ck.atomic_write_json = write_bytes, write_json
    train_tiny(Path({model!r}), Path({src!r}), Path({dst!r}), iters=7)
''')


@pytest.mark.parametrize("target", ["training.safetensors", "latest.json"])
def test_kill_9_during_checkpoint_write_keeps_previous(trained_model: Path, face_dirs, tmp_path: Path,
                                                       target: str) -> None:
    model = tmp_path / "m"
    shutil.copytree(trained_model, model)
    before = ck.load_checkpoint(model)
    marker = tmp_path / "writing"
    script = KILLER.format(repo=str(REPO), target=target, marker=str(marker), model=str(model),
                           src=str(face_dirs[0]), dst=str(face_dirs[1]))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while not marker.exists():
        if proc.poll() is not None:
            pytest.fail(f"writer exited early: {proc.stdout.read().decode()[-2000:]}")
        assert time.monotonic() < deadline, "checkpoint write never started"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    after = ck.load_checkpoint(model)  # verifies every sha256
    assert after.state["iteration"] == before.state["iteration"] == 6
    assert after.weights_sha256 == before.weights_sha256
    leftovers = [p for p in model.rglob("*.tmp")]
    assert leftovers, "the kill should have left a partial temp file behind"
    # the next run resumes from the previous checkpoint and cleans the unpublished directory
    result = train_tiny(model, *face_dirs, iters=7)
    assert result["iteration"] == 7 and result["iterations"] == 1
    assert len(list(model.glob("ckpt-*"))) <= 3
    published = json.loads((model / "latest.json").read_text())["history"]
    assert sorted(p.name for p in model.glob("ckpt-*")) == sorted(published)


def test_a_second_trainer_on_the_same_folder_is_refused(face_dirs, tmp_path: Path) -> None:
    from facedouble.train.trainer import Trainer
    from tests.train.conftest import FAST

    first = Trainer.create(tmp_path / "m", *face_dirs, "tiny", train_overrides={**FAST, "max_iters": 1})
    with pytest.raises(FacedoubleError, match=rf"in use by another trainer \(pid {os.getpid()}\)"):
        Trainer.create(tmp_path / "m", *face_dirs, "tiny", train_overrides={**FAST, "max_iters": 1})
    first.run()  # finishing frees the folder
    assert train_tiny(tmp_path / "m", *face_dirs, iters=2)["iteration"] == 2


def test_a_failed_start_frees_the_folder(face_dirs, tmp_path: Path) -> None:
    empty = tmp_path / "no_faces"
    empty.mkdir()
    with pytest.raises(FacedoubleError):
        train_tiny(tmp_path / "m", face_dirs[0], empty, iters=1)
    assert train_tiny(tmp_path / "m", *face_dirs, iters=1)["iteration"] == 1


def test_loss_csv_keeps_the_whole_curve_and_the_checkpoint_a_tail(face_dirs, tmp_path: Path, monkeypatch) -> None:
    from facedouble.train import losslog

    monkeypatch.setattr(losslog, "STATE_TAIL", 3)
    train_tiny(tmp_path / "m", *face_dirs, iters=2)
    train_tiny(tmp_path / "m", *face_dirs, iters=5)
    assert [h[0] for h in ck.load_state(tmp_path / "m")["loss_history"]] == [3, 4, 5]
    rows = (tmp_path / "m" / "loss.csv").read_text().splitlines()
    assert rows[0] == losslog.HEADER and [int(r.split(",")[0]) for r in rows[1:]] == [1, 2, 3, 4, 5]


def test_resume_cuts_loss_rows_written_after_the_checkpoint(tmp_path: Path) -> None:
    """A crash after appending rows but before publishing the checkpoint (or mid-line) leaves extra rows."""
    from facedouble.train.losslog import HEADER, LossLog

    rows = "".join(f"{i},{i / 10:.6f},{i / 20:.6f}\n" for i in range(1, 8))
    (tmp_path / "loss.csv").write_text(HEADER + "\n" + rows + "8,0.8")  # torn last line
    log = LossLog(tmp_path, [[4, 0.4, 0.2], [5, 0.5, 0.25]], iteration=5)
    lines = (tmp_path / "loss.csv").read_text().splitlines()
    assert [int(r.split(",")[0]) for r in lines[1:]] == [1, 2, 3, 4, 5]
    log.add(6, 0.6, 0.3)
    log.flush()
    assert (tmp_path / "loss.csv").read_text().splitlines()[-1] == "6,0.600000,0.300000"
