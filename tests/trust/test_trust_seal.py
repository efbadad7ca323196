"""The consent inside a checkpoint is sealed with the workspace key: an edited state.json is refused."""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
from pathlib import Path

import pytest
import torch

from facedouble.errors import PolicyError
from facedouble.io.atomic import atomic_write_json
from facedouble.nn import checkpoint as ck


def _model(folder: Path, consent: dict | None, ws: Path, seed: int = 0) -> Path:
    """A tiny checkpoint saved and sealed the way the trainer saves it."""
    from facedouble.config import to_dict
    from facedouble.train.models.presets import ModelConfig, build_model
    from facedouble.train.trainer import seal_consent

    cfg = ModelConfig(arch="df", opts="ud", resolution=64, ae_dims=32, e_dims=8, d_dims=8, d_mask_dims=4)
    torch.manual_seed(seed)
    seal = (lambda ckpt, weights_sha256: seal_consent(ckpt, consent, weights_sha256, ws)) if consent else None
    ck.save_checkpoint(folder, build_model(cfg).state_dict(), {},
                       {"model": to_dict(cfg), "train": {}, "iteration": 0, "consent": consent}, before_publish=seal)
    return folder


def _edit_state(model_dir: Path, **changes) -> None:
    """Edit state.json and recompute its sha256 in latest.json, as an attacker can."""
    ckpt, _ = ck.checkpoint_dir(model_dir)
    state = json.loads((ckpt / ck.STATE).read_text()) | changes
    atomic_write_json(ckpt / ck.STATE, state)
    latest = json.loads((model_dir / ck.LATEST).read_text())
    latest["files"][ck.STATE] = hashlib.sha256((ckpt / ck.STATE).read_bytes()).hexdigest()
    atomic_write_json(model_dir / ck.LATEST, latest)


@pytest.fixture()
def ws(tmp_path):
    from facedouble.consent.records import add_identity

    ws = tmp_path / "ws"
    records = {}
    for name in ("jane", "john"):
        release = tmp_path / f"{name}.pdf"
        release.write_text(f"release of {name}\n")
        records[name] = add_identity(ws, name, release)
    return ws, {n: {"name": r.name, "record_hash": r.record_hash} for n, r in records.items()}


def test_sealed_model_renders_and_the_key_is_private(ws, tmp_path, capsys):
    from facedouble.policy.keys import key_path
    from facedouble.train.swapper import load_swapper
    from facedouble.trust.render import check_consent

    workspace, consents = ws
    sw = load_swapper(_model(tmp_path / "m", consents["jane"], workspace))
    assert sw.consent_seal
    assert check_consent(sw, workspace) == consents["jane"]
    key = key_path(workspace, "state")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().strip() not in capsys.readouterr().out  # never printed


def test_edited_state_json_is_refused(ws, tmp_path):
    from facedouble.train.swapper import load_swapper
    from facedouble.trust.render import check_consent

    workspace, consents = ws
    model = _model(tmp_path / "m", consents["jane"], workspace)
    _edit_state(model, consent=consents["john"])  # move another record's consent into this model
    with pytest.raises(PolicyError, match="seal does not verify"):
        check_consent(load_swapper(model), workspace)


def test_consent_and_seal_copied_from_another_model_are_refused(ws, tmp_path):
    from facedouble.consent.seal import SEAL_FILE
    from facedouble.train.swapper import load_swapper
    from facedouble.trust.render import check_consent

    workspace, consents = ws
    consented = _model(tmp_path / "a", consents["jane"], workspace)
    other = _model(tmp_path / "b", None, workspace, seed=1)  # e.g. pretrained on someone else's face
    _edit_state(other, consent=consents["jane"])
    shutil.copy(ck.checkpoint_dir(consented)[0] / SEAL_FILE, ck.checkpoint_dir(other)[0] / SEAL_FILE)
    with pytest.raises(PolicyError, match="seal does not verify"):
        check_consent(load_swapper(other), workspace)


def test_unsealed_model_and_foreign_workspace_are_refused(ws, tmp_path):
    from facedouble.consent.records import add_identity
    from facedouble.consent.seal import SEAL_FILE
    from facedouble.train.swapper import load_swapper
    from facedouble.trust.render import check_consent

    workspace, consents = ws
    model = _model(tmp_path / "m", consents["jane"], workspace)
    (ck.checkpoint_dir(model)[0] / SEAL_FILE).unlink()
    with pytest.raises(PolicyError, match="not sealed"):
        check_consent(load_swapper(model), workspace)
    # the same record copied into another workspace (with another key) does not verify the seal
    model = _model(tmp_path / "m2", consents["jane"], workspace)
    other = tmp_path / "other-ws"
    shutil.copytree(workspace / "identities", other / "identities")
    add_identity(other, "someone", tmp_path / "jane.pdf")  # any use of it; the key is made at the first seal
    from facedouble.consent.seal import write_seal

    write_seal(tmp_path / "scratch", consents["jane"], "0" * 64, other)
    with pytest.raises(PolicyError, match="seal does not verify"):
        check_consent(load_swapper(model), other)


def test_seal_model_seals_a_hand_built_checkpoint(ws, tmp_path):
    from facedouble.consent.seal import seal_model
    from facedouble.train.swapper import load_swapper
    from facedouble.trust.render import check_consent

    workspace, consents = ws
    model = _model(tmp_path / "m", None, workspace)
    _edit_state(model, consent=consents["jane"])
    with pytest.raises(PolicyError, match="not sealed"):
        check_consent(load_swapper(model), workspace)
    seal_model(model, workspace)  # what the trainer does after a save: the key holder vouches for it
    assert check_consent(load_swapper(model), workspace) == consents["jane"]


class _Killed(BaseException):
    """kill -9 at a chosen line of a save (nothing after it runs)."""


@pytest.fixture()
def trainer_jane(ws, tmp_path, monkeypatch, grid_faceset):
    """A real Trainer on GRID faces (consent granted as jane's record: the gate is tested elsewhere)."""
    from facedouble.train import trainer

    workspace, consents = ws
    monkeypatch.setattr(trainer, "check_consent", lambda src, w: dict(consents["jane"]))
    faces = grid_faceset("bbaf2n", 64, "full")
    t = trainer.Trainer.create(tmp_path / "m", faces, faces, "tiny", workspace=workspace,
                               train_overrides={"batch_size": 2, "workers": 0, "max_iters": 1})
    yield t, tmp_path / "m"
    t.close()


def test_a_kill_right_after_a_save_is_published_leaves_a_sealed_model(ws, trainer_jane, monkeypatch):
    """The seal is written into the checkpoint before latest.json publishes it: a process killed right
    after the publish (before anything else of the save) leaves a model that renders, with no extra save."""
    from facedouble.train.swapper import load_swapper
    from facedouble.trust.render import check_consent

    workspace, consents = ws
    t, model = trainer_jane
    publish = ck.atomic_write_json

    def publish_then_die(path, data):
        publish(path, data)
        if Path(path).name == ck.LATEST:
            raise _Killed

    monkeypatch.setattr(ck, "atomic_write_json", publish_then_die)
    with pytest.raises(_Killed):
        t.save()
    assert check_consent(load_swapper(model), workspace) == consents["jane"]


def test_a_kill_while_sealing_leaves_the_previous_sealed_checkpoint(ws, trainer_jane, monkeypatch):
    from facedouble.train import trainer
    from facedouble.train.swapper import load_swapper
    from facedouble.trust.render import check_consent

    workspace, consents = ws
    t, model = trainer_jane
    t.save()
    first = ck.checkpoint_dir(model)[0]

    def die(*args):
        raise _Killed

    monkeypatch.setattr(trainer, "seal_consent", die)
    t.iteration += 1
    with pytest.raises(_Killed):
        t.save()
    assert ck.checkpoint_dir(model)[0] == first  # the unsealed folder was never published
    assert check_consent(load_swapper(model), workspace) == consents["jane"]
