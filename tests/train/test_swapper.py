"""The merge-facing contract (load_swapper / Swapper.swap), ONNX export and the model CLI."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from facedouble.errors import FacedoubleError
from facedouble.faceset import Faceset
from facedouble.nn import checkpoint as ck
from facedouble.train.swapper import load_swapper
from tests.train.train_cli import main


@pytest.fixture(scope="module")
def dst_faces(face_dirs) -> np.ndarray:
    fs = Faceset(face_dirs[1])
    return np.stack([fs.load(p)[0] for p in fs.paths()[:5]])


def test_swapper_contract(trained_model: Path, dst_faces: np.ndarray) -> None:
    sw = load_swapper(trained_model, precision="fp32")
    assert sw.resolution == 64 and sw.face_type == "full"
    ckpt, _ = ck.checkpoint_dir(trained_model)
    assert sw.model_hash == hashlib.sha256((ckpt / ck.WEIGHTS).read_bytes()).hexdigest()
    assert sw.consent == {"name": "test-speaker", "record_hash": "ab" * 32}
    sw.batch_size = 2  # force several batches
    rgb, mask = sw.swap(dst_faces)
    assert rgb.shape == (5, 64, 64, 3) and rgb.dtype == np.float32
    assert mask.shape == (5, 64, 64) and mask.dtype == np.float32
    assert rgb.min() >= 0 and rgb.max() <= 1 and mask.min() >= 0 and mask.max() <= 1
    # batching does not change results, and it is the dst->src path (src decoder)
    one_rgb, _ = sw.swap(dst_faces[3:4])
    np.testing.assert_allclose(one_rgb[0], rgb[3], atol=1e-5)
    with torch.no_grad():
        x = torch.from_numpy(dst_faces[:1]).permute(0, 3, 1, 2).float() / 255
        code = sw.model.inter(sw.model.encoder(x))
        want = sw.model.decoder_src(code)[0][0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(rgb[0], want, atol=1e-5)


def test_bf16_inference_stays_within_one_8bit_level(trained_model: Path, dst_faces: np.ndarray) -> None:
    """bf16 autocast (what "auto" picks on bf16 hardware) must not visibly change the swapped face."""
    want_rgb, want_mask = load_swapper(trained_model, precision="fp32").swap(dst_faces)
    bf16 = load_swapper(trained_model, precision="bf16")
    assert bf16.bf16
    got_rgb, got_mask = bf16.swap(dst_faces)
    assert np.abs(got_rgb - want_rgb).max() * 255 < 1.0
    assert np.abs(got_mask - want_mask).max() * 255 < 1.0
    assert np.abs(got_rgb - want_rgb).mean() * 255 < 0.25


def test_auto_precision_uses_bf16_only_on_native_hardware(trained_model: Path, monkeypatch) -> None:
    from facedouble.nn import precision

    for native in (False, True):
        monkeypatch.setattr(precision, "native_bf16", lambda device, native=native: native)
        assert load_swapper(trained_model).bf16 is native
        assert load_swapper(trained_model, precision="fp32").bf16 is False
    with pytest.raises(ValueError, match="precision"):
        precision.use_bf16("fp16")


def test_swapper_rejects_wrong_input(trained_model: Path) -> None:
    sw = load_swapper(trained_model)
    with pytest.raises(FacedoubleError, match="uint8"):
        sw.swap(np.zeros((1, 96, 96, 3), np.uint8))
    with pytest.raises(FacedoubleError, match="uint8"):
        sw.swap(np.zeros((1, 64, 64, 3), np.float32))


def test_onnx_export_matches_pytorch(trained_model: Path, dst_faces: np.ndarray, tmp_path: Path) -> None:
    import onnxruntime as ort

    out = tmp_path / "swap.onnx"
    assert main(["model", "export", str(trained_model), "--onnx", str(out)]) == 0
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = dst_faces.transpose(0, 3, 1, 2).astype(np.float32) / 255  # real faces, batch of 5 (dynamic)
    got_rgb, got_mask = sess.run(["rgb", "mask"], {"dst": x})
    rgb, mask = load_swapper(trained_model, precision="fp32").swap(dst_faces)
    assert np.abs(got_rgb.transpose(0, 2, 3, 1) - rgb).max() < 1e-3
    assert np.abs(got_mask[:, 0] - mask).max() < 1e-3
    meta = sess.get_modelmeta().custom_metadata_map
    assert meta["facedouble.model_hash"] == load_swapper(trained_model).model_hash


def test_model_info_cli(trained_model: Path, capsys) -> None:
    assert main(["model", "info", str(trained_model), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["iteration"] == 6 and info["model"]["resolution"] == 64
    assert info["param_count"] == sum(p.numel() for p in load_swapper(trained_model).model.parameters())
    assert main(["model", "info", str(trained_model)]) == 0
    assert "test-speaker" in capsys.readouterr().out


def test_cli_errors_are_one_line(tmp_path: Path, capsys, trained_model: Path) -> None:
    assert main(["model", "info", str(tmp_path)]) != 0
    err = capsys.readouterr().err.strip()
    assert "no trained model" in err and "\n" not in err
    assert main(["train", "--src", str(tmp_path / "nope"), "--dst", str(tmp_path), "--model",
                 str(tmp_path / "m"), "--preset", "tiny"]) != 0
    assert "not found" in capsys.readouterr().err
    assert main(["train", "--src", str(tmp_path), "--dst", str(tmp_path), "--model", str(tmp_path / "m"),
                 "--set", "no_such_option=1"]) != 0
    assert "unknown setting 'no_such_option'" in capsys.readouterr().err
    broken = tmp_path / "broken"
    shutil.copytree(trained_model, broken)
    (broken / "latest.json").write_text("{")
    assert main(["model", "info", str(broken)]) != 0
    assert "corrupt" in capsys.readouterr().err


@pytest.mark.parametrize("arch,opts", [("df", "ud"), ("liae", "ud"), ("liae", "t")])
def test_onnx_export_every_architecture(arch: str, opts: str, tmp_path: Path) -> None:
    """The -d depth-to-space heads, LIAE's doubled code and -t's extra stage all export exactly."""
    from facedouble.config import to_dict
    from facedouble.train.export import export_onnx
    from facedouble.train.models.presets import ModelConfig, build_model

    cfg = ModelConfig(arch=arch, opts=opts, resolution=64, ae_dims=32, e_dims=8, d_dims=8, d_mask_dims=4)
    torch.manual_seed(0)
    model = build_model(cfg)
    state = {"model": to_dict(cfg), "train": {}, "iteration": 0, "consent": {"name": "t", "record_hash": "ab" * 32}}
    ck.save_checkpoint(tmp_path / "m", model.state_dict(), {}, state)
    info = export_onnx(tmp_path / "m", tmp_path / "m.onnx")
    assert info["max_abs_diff"] < 1e-3
