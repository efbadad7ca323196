"""ONNX export refuses an unconsented model and carries consent + provenance; every trust gate fails closed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from facedouble.errors import PolicyError

CONSENT = {"name": "test-performer", "record_hash": "ab" * 32}


def _tiny_model(folder: Path, consent: dict | None) -> Path:
    from facedouble.config import to_dict
    from facedouble.nn import checkpoint as ck
    from facedouble.train.models.presets import ModelConfig, build_model

    cfg = ModelConfig(arch="df", opts="ud", resolution=64, ae_dims=32, e_dims=8, d_dims=8, d_mask_dims=4)
    torch.manual_seed(0)
    ck.save_checkpoint(folder, build_model(cfg).state_dict(), {},
                       {"model": to_dict(cfg), "train": {}, "iteration": 0, "consent": consent})
    return folder


def test_export_of_an_unconsented_model_is_refused(tmp_path):
    from facedouble.train.export import export_onnx

    model = _tiny_model(tmp_path / "m", None)
    with pytest.raises(PolicyError, match="no consent record"):
        export_onnx(model, tmp_path / "m.onnx", check=False)
    assert not (tmp_path / "m.onnx").exists()


def test_export_writes_consent_and_provenance_into_the_metadata(tmp_path):
    import onnx

    from facedouble.train.export import EXPORT_NOTICE, export_onnx
    from facedouble.train.swapper import load_swapper

    model = _tiny_model(tmp_path / "m", CONSENT)
    info = export_onnx(model, tmp_path / "m.onnx")
    assert info["max_abs_diff"] < 1e-3
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert json.loads(meta["facedouble.consent"]) == CONSENT
    prov = json.loads(meta["facedouble.provenance"])
    assert prov["model_hash"] == meta["facedouble.model_hash"] == load_swapper(model).model_hash
    assert prov["synthetic"] is True and prov["tool"].startswith("facedouble ") and prov["exported_at"]
    assert meta["facedouble.notice"] == EXPORT_NOTICE and "no guard, watermark" in EXPORT_NOTICE


def test_training_gate_fails_closed_when_trust_cannot_be_imported(tmp_path, monkeypatch):
    from facedouble.train.trainer import check_consent

    monkeypatch.setitem(sys.modules, "facedouble.consent.records", None)  # import raises ImportError
    with pytest.raises(PolicyError, match="training refused: the consent check cannot run"):
        check_consent(tmp_path, None)


def test_pretrain_gate_fails_closed_when_trust_cannot_be_imported(tmp_path, monkeypatch):
    from facedouble.train.pretrain import check_pretrain_faceset

    monkeypatch.setitem(sys.modules, "facedouble.consent.person", None)
    with pytest.raises(PolicyError, match="pretraining refused: the identity check cannot run"):
        check_pretrain_faceset(tmp_path)


@pytest.mark.parametrize("call", ["merge_render", "merge_preview"])
def test_render_and_preview_fail_closed_when_trust_cannot_be_imported(call, tmp_path, monkeypatch):
    """Without the trust module nothing is loaded or rendered (the CLI turns the ImportError into one line,
    exit 70), never an unchecked render."""
    from facedouble import api

    model = _tiny_model(tmp_path / "m", CONSENT)
    monkeypatch.setitem(sys.modules, "facedouble.trust.render", None)
    with pytest.raises(ImportError):
        if call == "merge_render":
            api.merge_render(model, tmp_path / "faces", tmp_path / "out.mp4")
        else:
            api.merge_preview(model, tmp_path / "faces", 0)
    assert not (tmp_path / "out.mp4").exists()
