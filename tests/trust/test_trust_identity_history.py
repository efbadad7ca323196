"""A model keeps the identities that trained its src path; a session on another identity is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from facedouble.errors import PolicyError
from facedouble.nn import checkpoint as ck

JANE = {"name": "jane", "record_hash": "ab" * 32}
JOHN = {"name": "john", "record_hash": "cd" * 32}


def _checkpoint(folder: Path, consent: dict | None) -> Path:
    from facedouble.config import to_dict
    from facedouble.train.models.presets import build_model, preset

    cfg = preset("tiny")
    torch.manual_seed(0)
    ck.save_checkpoint(folder, build_model(cfg).state_dict(), {},
                       {"model": to_dict(cfg), "train": {}, "iteration": 1, "consent": consent})
    return folder


def test_switching_a_model_to_another_identity_is_refused(tmp_path, monkeypatch):
    from facedouble.train import trainer

    model = _checkpoint(tmp_path / "m", JANE)
    monkeypatch.setattr(trainer, "check_consent", lambda src, workspace: dict(JOHN))
    with pytest.raises(PolicyError, match="trained on identity 'jane'"):
        trainer.Trainer.create(model, tmp_path / "src", tmp_path / "dst", None)


def test_history_is_kept_and_the_same_identity_continues(tmp_path):
    from facedouble.train.trainer import check_identity_history, identity_history

    state = {"consent": JANE, "identity_history": ["jane"]}
    check_identity_history(state, JANE, tmp_path)  # the same person: fine
    assert identity_history({"consent": None, "identity_history": ["john"]}) == ["john"]
    with pytest.raises(PolicyError):  # a later pretrain session cleared the consent, the history remains
        check_identity_history({"consent": None, "identity_history": ["john"]}, JANE, tmp_path)
