"""The pretraining rule (issue 14): pretraining on one person's faces is refused, a crowd is accepted, so
pretrain-then-switch cannot launder an identity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facedouble.errors import PolicyError
from facedouble.train.pretrain import MIN_IDENTITIES, check_pretrain_faceset, identity_clusters


def test_one_person_faceset_is_refused_for_pretraining(face_dirs) -> None:
    with pytest.raises(PolicyError, match="many people"):
        check_pretrain_faceset(face_dirs[0])


def test_one_performer_with_a_few_extras_is_refused(face_dirs, grid_faceset, tmp_path: Path) -> None:
    """80 % one speaker, 20 % a second one: one identity above 40 % (refused before the whole sample is embedded)."""
    import shutil

    from facedouble.faceset import Faceset

    for path in Faceset(face_dirs[0]).paths():
        shutil.copy2(path, tmp_path / f"a_{path.name}")
    for path in Faceset(face_dirs[1]).paths()[::4]:
        shutil.copy2(path, tmp_path / f"b_{path.name}")
    with pytest.raises(PolicyError, match="one identity holds"):
        check_pretrain_faceset(tmp_path)


def test_crowd_faceset_is_accepted(crowd_faceset) -> None:
    identities, largest = check_pretrain_faceset(crowd_faceset)
    assert identities >= MIN_IDENTITIES and largest <= 0.4


def test_clusters_follow_the_threshold() -> None:
    rng = np.random.default_rng(0)
    people = rng.normal(size=(3, 128))
    people /= np.linalg.norm(people, axis=1, keepdims=True)
    faces = np.concatenate([p + rng.normal(scale=0.01, size=(n, 128)) for p, n in zip(people, (5, 3, 2), strict=True)])
    assert identity_clusters(faces, 0.5) == [5, 3, 2]
    assert identity_clusters(faces, 10.0) == [10]


def test_pretrain_on_one_person_then_switch_is_refused(face_dirs, tmp_path: Path, capsys) -> None:
    """The laundering of issue 14 (pretrain on X alone, then one iteration on Y's consented faceset) stops at
    its first step: `train --pretrain` on one person's faces exits 4 with one line, and writes no model."""
    from facedouble.errors import EXIT_POLICY
    from tests.train.train_cli import main

    model = tmp_path / "m"
    rc = main(["train", "--src", str(face_dirs[0]), "--model", str(model), "--preset", "tiny", "--pretrain",
               "--max-iters", "1", "--workers", "0"])
    err = capsys.readouterr().err.strip()
    assert rc == EXIT_POLICY and "many people" in err and len(err.splitlines()) == 1, err
    assert not (model / "latest.json").exists()


def test_pretrained_on_a_crowd_then_trained_on_a_consented_faceset_swaps(crowd_faceset, face_dirs,
                                                                         tmp_path: Path) -> None:
    """The rule does not get in the way of honest use: pretrain on many people, then train on the consented
    faceset (consent granted by the train tests' stand-in): the model swaps and carries that one identity."""
    from facedouble.nn import checkpoint as ck
    from facedouble.train.swapper import load_swapper
    from tests.train.conftest import train_tiny

    model = tmp_path / "m"
    train_tiny(model, crowd_faceset, None, iters=1, pretrain=True)
    assert ck.load_state(model)["pretrain_only"] and not ck.load_state(model)["consent"]
    train_tiny(model, *face_dirs, iters=2, pretrain=False)
    state = ck.load_state(model)
    assert not state["pretrain_only"] and state["consent"]["name"] == "test-speaker"
    assert state["identity_history"] == ["test-speaker"]
    load_swapper(model)  # no longer refused as pretrained
