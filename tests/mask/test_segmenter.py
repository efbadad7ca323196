"""The trainable face segmenter on real GRID faces: exact resume, apply/remove/show, one-line errors, mask modes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from facedouble.cli import main
from facedouble.faceset import Faceset, read_face, read_meta
from facedouble.faceset.xseg import decode_mask
from facedouble.mask import FaceLabels
from facedouble.mask.segmenter.apply import GENERIC, load_segmenter, predict
from facedouble.mask.segmenter.train import SegTrainConfig, SegTrainer
from tests.mask.conftest import CFG


def weights(model_dir):
    from facedouble.nn.checkpoint import load_checkpoint

    return load_checkpoint(model_dir).weights


def test_resume_is_exact(tmp_path, labelled):
    straight = SegTrainer(tmp_path / "a", [labelled], SegTrainConfig(max_iters=4, **CFG), resolution=64)
    assert straight.run()["iteration"] == 4
    SegTrainer(tmp_path / "b", [labelled], SegTrainConfig(max_iters=4, session_iters=2, **CFG), resolution=64).run()
    assert SegTrainer(tmp_path / "b", [labelled], SegTrainConfig(max_iters=4, **CFG)).run()["iterations"] == 2
    wa, wb = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert (tmp_path / "a" / "preview.png").stat().st_size > 1000


def test_apply_remove_show_round_trip(tmp_path, labelled):
    from facedouble.train.data import FaceBank

    model = tmp_path / "m"
    assert main(["mask", "train", "--faceset", str(labelled), "--model", str(model), "--resolution", "64",
                 "--max-iters", "2", "--batch-size", "2", "--workers", "0", "--no-bf16", "--no-progress"]) == 0
    paths = Faceset(labelled).paths()
    before = [read_face(p)[0] for p in paths]
    assert main(["mask", "apply", "--model", str(model), str(labelled), "--no-progress"]) == 0
    metas = [read_meta(p) for p in paths]
    assert all(m.xseg is not None and decode_mask(m.xseg).shape == (m.size, m.size) for m in metas)
    assert max(len(m.xseg["png"]) for m in metas) < 16000  # compact: a few KB per face
    assert all(np.array_equal(read_face(p)[0], b) for p, b in zip(paths, before, strict=True))
    bank = FaceBank(labelled, 64, "full", paths=paths[6:8])  # unlabelled faces train on the applied mask
    want = decode_mask(metas[6].xseg)
    assert np.allclose(bank.masks[0].astype(np.float32) / 255, want, atol=1 / 255 + 1e-6)
    assert main(["mask", "show", str(labelled), str(tmp_path / "show"), "--limit", "3"]) == 0
    assert len(list((tmp_path / "show").glob("*.jpg"))) == 3
    assert main(["mask", "remove", str(labelled)]) == 0
    assert all(read_meta(p).xseg is None for p in paths)
    assert read_meta(paths[0]).labels is not None  # labels stay


def _one_line_error(capsys, args, code=3) -> str:
    capsys.readouterr()
    assert main(args) == code
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_one_line_errors(tmp_path, grid_faceset, labelled, capsys):
    bare = tmp_path / "bare"
    shutil.copytree(grid_faceset("bbaf2n", embed_every=5), bare)
    err = _one_line_error(capsys, ["mask", "train", "--faceset", str(bare), "--model", str(tmp_path / "m0")])
    assert "no labelled faces" in err
    model = tmp_path / "m"
    SegTrainer(model, [labelled], SegTrainConfig(max_iters=1, **CFG), resolution=64).run()
    err = _one_line_error(capsys, ["mask", "train", "--faceset", str(labelled), "--model", str(model),
                                   "--resolution", "128", "--max-iters", "2"])
    assert "64 px, not 128 px" in err
    export = tmp_path / "exported"  # weights of one shape, a config saying another
    export.mkdir()
    ckpt = next(model.glob("ckpt-*"))
    shutil.copy(ckpt / "weights.safetensors", export / "weights.safetensors")
    (export / "segmenter.json").write_text(json.dumps({"resolution": 64, "widths": [8, 16, 24, 32, 48]}))
    assert "another model shape" in _one_line_error(capsys, ["mask", "apply", "--model", str(export), str(bare)])
    (export / "segmenter.json").write_text(json.dumps({"resolution": 100, "widths": [16, 32, 48, 64, 96]}))
    assert "multiple of 32" in _one_line_error(capsys, ["mask", "apply", "--model", str(export), str(bare)])
    # malformed labels inside a face's metadata: the face is refused by name, in one line
    from facedouble.faceset.meta import META_KEY
    from facedouble.io import imagemeta

    path = Faceset(labelled).paths()[0]
    raw = json.loads(imagemeta.get_text(path.read_bytes(), META_KEY))
    raw["labels"] = {"include": [[[0, 0], [1]]]}
    path.write_bytes(imagemeta.set_text(path.read_bytes(), META_KEY, json.dumps(raw)))
    err = _one_line_error(capsys, ["mask", "train", "--faceset", str(labelled), "--model", str(tmp_path / "m2")])
    assert path.name in err and "labels" in err
    assert "no applied masks" in _one_line_error(capsys, ["mask", "show", str(bare), str(tmp_path / "o")], 2)


def test_xseg_mask_modes(tmp_path, labelled, monkeypatch, grid_clip):
    from facedouble.errors import FacedoubleError
    from facedouble.io.video import open_source
    from facedouble.merge.masks import MASK_MODES, XSEG_MODEL_ENV, build_mask, hands_for_mode, uses_xseg

    assert {"xseg", "hull*xseg", "xseg*learned", "hull*xseg*-hands", "xseg*-hands", "mesh*xseg*learned*-hands"} \
        <= set(MASK_MODES)
    assert len(MASK_MODES) == len(set(MASK_MODES)) and MASK_MODES[:2] == ("hull", "mesh")
    assert uses_xseg("hull*xseg") and not uses_xseg("hull*-hands")
    lm = read_meta(Faceset(labelled).paths()[0]).aligned_landmarks
    with pytest.raises(FacedoubleError, match="xseg"):
        build_mask("hull*xseg", 64, lm, None, None)
    model = tmp_path / "m"
    SegTrainer(model, [labelled], SegTrainConfig(max_iters=1, **CFG), resolution=64).run()
    monkeypatch.setenv(XSEG_MODEL_ENV, str(model))
    meta = read_meta(Faceset(labelled).paths()[0])
    frame = next(f.image for f in open_source(grid_clip("bbaf2n")) if f.index == meta.frame_index)
    got = hands_for_mode("hull*xseg", frame, meta.transform, meta.size)
    assert isinstance(got, dict) and got["xseg"].shape == (64, 64) and "hands" not in got
    hull = build_mask("hull", 64, lm, None, None)
    prod = build_mask("hull*xseg", 64, lm, None, None, got)
    assert np.allclose(prod, hull * np.clip(got["xseg"], 0, 1))
    learned = np.full((64, 64), 0.5, np.float32)
    assert np.allclose(build_mask("xseg*learned", 64, lm, None, learned, got), got["xseg"] * 0.5)
    assert hands_for_mode("hull", frame, meta.transform, meta.size) is None


def test_generic_segmenter_ships_and_finds_a_real_face(labelled):
    files = list(GENERIC.iterdir())
    assert sum(f.stat().st_size for f in files) <= 10_000_000
    net, cfg = load_segmenter("generic")
    assert cfg.resolution == 256
    import cv2

    from facedouble.mask.labels import label_mask
    from facedouble.mask.segmenter.outline import meta_outline

    ious = []
    for path, meta in Faceset(labelled).metas()[:6:2]:  # faces with the mouth box cut out
        img, _ = read_face(path)
        prob = predict(net, cv2.resize(img, (256, 256), interpolation=cv2.INTER_CUBIC)[None],
                       outlines=meta_outline(meta, 256)[None])[0]  # an RGB model ignores the outline
        prob = cv2.resize(prob, (64, 64), interpolation=cv2.INTER_AREA)
        oval = label_mask(FaceLabels(meta.labels.include, []), 64) > 0
        ious.append(np.logical_and(prob > 0.5, oval).sum() / np.logical_or(prob > 0.5, oval).sum())
    assert min(ious) > 0.8, ious


def test_shipped_labels_are_valid_and_hold_out_whole_clips():
    from facedouble.faceset.labels import FaceLabels as Labels

    raw = json.loads((GENERIC.parent / "labels.json").read_text())
    faces, how, split = raw["faces"], raw["how"], raw["split"]
    assert len(faces) >= 150 and set(faces) == set(how) == set(split)
    for entry in faces.values():
        Labels.from_dict(entry, size=256)
    clips = {}
    for name, s in split.items():
        clips.setdefault(name.rsplit("_", 3)[0], set()).add(s)
    assert all(len(v) == 1 for v in clips.values())  # a clip is wholly train or held-out
    assert {"bird", "want"} <= {c for c, v in clips.items() if v == {"heldout"}}
    assert any(h.startswith("corrected") for h in how.values())
