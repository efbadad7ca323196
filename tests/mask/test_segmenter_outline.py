"""Outline segmenters (prior = "outline"): the face outline from the landmarks as a 4th input, on real GRID faces."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from facedouble.cli import main
from facedouble.errors import InputError
from facedouble.face.mesh import outline_mask
from facedouble.faceset import Faceset, read_face, read_meta
from facedouble.faceset.xseg import decode_mask
from facedouble.mask.labels import label_mask
from facedouble.mask.segmenter.apply import load_segmenter, predict, segment_frame_faces, to_resolution
from facedouble.mask.segmenter.augment import SegAugment, make_batch
from facedouble.mask.segmenter.model import Segmenter, SegmenterConfig, widen_input
from facedouble.mask.segmenter.outline import meta_outline
from facedouble.mask.segmenter.train import LabelledFaces, SegTrainConfig, SegTrainer
from facedouble.merge.masks import mesh_mask
from tests.mask.conftest import CFG

QUIET = dict(occluder=0.0, patch=0.0, colour=0.0, blur=0.0, noise=0.0, grey=0.0)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0.5, b > 0.5
    return float(np.logical_and(a, b).sum() / max(np.logical_or(a, b).sum(), 1))


def test_outline_is_merges_mesh_mask_and_the_labels_oval(labelled):
    path, meta = Faceset(labelled).metas()[1]  # a face without the mouth box cut out
    mesh = meta.mesh @ meta.transform[:, :2].T + meta.transform[:, 2]
    assert np.array_equal(outline_mask(mesh, meta.aligned_landmarks, meta.size), mesh_mask(mesh, meta.size))
    oval = label_mask(meta.labels, meta.size)
    assert _iou(meta_outline(meta, meta.size) / 255.0, oval) > 0.97
    # at another side the outline scales with the face
    big = meta_outline(meta, 2 * meta.size)[::2, ::2] / 255.0
    assert _iou(big, meta_outline(meta, meta.size) / 255.0) > 0.97
    # without a mesh: the hull of the 68 landmarks (brows to chin: smaller than the oval, no forehead)
    hull = meta_outline(dataclasses.replace(meta, mesh=None), meta.size) / 255.0
    assert 0.5 < hull.sum() / oval.sum() < 0.95


def test_outline_warps_with_the_image_and_rgb_batches_are_unchanged(labelled):
    data = LabelledFaces([labelled], 64)
    aug = SegAugment(**QUIET, outline_jitter=0.0)
    x, y = make_batch(data.images, data.masks, data.occluders, aug, 3, 7, 4, data.outlines)
    assert x.shape == (4, 4, 64, 64)
    # labels without a hole are the oval the outline is made of: after the same warp, flip and turn they agree
    rgb, y_rgb = make_batch(data.images, data.masks, data.occluders, aug, 3, 7, 4)
    assert np.array_equal(rgb, x[:, :3]) and np.array_equal(y_rgb, y)  # the outline changes no RGB draw
    holes = [i for i in range(4) if y[i, 0].sum() < 0.93 * x[i, 3].sum()]  # the mouth box: ~13 % of the oval
    full = [i for i in range(4) if i not in holes]
    assert holes and full and all(_iou(x[i, 3], y[i, 0]) > 0.95 for i in full)
    jittered, _ = make_batch(data.images, data.masks, data.occluders, SegAugment(**QUIET, outline_jitter=1.0), 3, 7,
                             1, data.outlines)
    assert np.array_equal(jittered[0, :3], x[0, :3]) and _iou(jittered[0, 3], x[0, 3]) < 0.99


def test_widened_rgb_model_predicts_as_before(labelled):
    torch.manual_seed(0)
    rgb = Segmenter(SegmenterConfig(resolution=64, widths=(8, 8, 8, 8, 8))).eval()
    wide = Segmenter(SegmenterConfig(resolution=64, widths=(8, 8, 8, 8, 8), prior="outline")).eval()
    wide.load_state_dict(widen_input(wide, rgb.state_dict()))
    path, meta = Faceset(labelled).metas()[0]
    face = torch.from_numpy(read_face(path)[0]).permute(2, 0, 1)[None].float() / 255
    outline = torch.from_numpy(meta_outline(meta, 64))[None, None].float() / 255
    with torch.no_grad():
        assert torch.allclose(wide(torch.cat([face, outline], 1)), rgb(face), atol=1e-5)
        with pytest.raises(InputError, match="4"):
            wide(face)


def test_outline_model_trains_applies_and_refuses_what_it_cannot_use(tmp_path, labelled, capsys):
    rgb_dir, wide_dir = tmp_path / "rgb", tmp_path / "wide"
    SegTrainer(rgb_dir, [labelled], SegTrainConfig(max_iters=1, **CFG), resolution=64).run()
    # --from an RGB model with --prior outline: widened, then trained with the outline channel
    summary = SegTrainer(wide_dir, [labelled], SegTrainConfig(max_iters=2, **CFG), init=rgb_dir,
                         prior="outline").run()
    assert summary["iteration"] == 2
    net, cfg = load_segmenter(wide_dir)
    assert cfg.prior == "outline" and net.down[0][0][0].weight.shape[1] == 4
    # resuming the folder keeps its prior; asking for another is refused in one line
    with pytest.raises(InputError, match="prior outline, not none"):
        SegTrainer(wide_dir, [labelled], SegTrainConfig(max_iters=3, **CFG), prior="none")
    with pytest.raises(InputError, match="narrowed"):
        SegTrainer(tmp_path / "x", [labelled], SegTrainConfig(max_iters=1, **CFG), init=wide_dir, prior="none")
    paths, metas = zip(*Faceset(labelled).metas()[:3], strict=True)
    faces = np.stack([to_resolution(read_face(p)[0], 64) for p in paths])
    with pytest.raises(InputError, match="outline"):
        predict(net, faces)
    outlines = np.stack([meta_outline(m, 64) for m in metas])
    probs = predict(net, faces, outlines=outlines)
    # the outline is an input: the same pixels with another outline give another mask
    assert not np.allclose(probs, predict(net, faces, outlines=np.zeros_like(outlines)))
    # `mask apply` gives each face its own outline from its metadata
    assert main(["mask", "apply", "--model", str(wide_dir), str(labelled), "--no-progress"]) == 0
    stored = decode_mask(read_meta(paths[0]).xseg)
    assert np.abs(stored - probs[0]).max() < 1 / 126 + 1 / 255  # the stored mask has 64 levels
    # merge's per-frame path needs the face's points
    frame = np.zeros((120, 160, 3), np.uint8)
    with pytest.raises(InputError, match="landmarks"):
        segment_frame_faces(frame, metas[0].transform, 64, wide_dir)
    mesh = metas[0].mesh @ metas[0].transform[:, :2].T + metas[0].transform[:, 2]
    assert segment_frame_faces(frame, metas[0].transform, 64, wide_dir, metas[0].aligned_landmarks,
                               mesh).shape == (64, 64)
    capsys.readouterr()
    assert main(["mask", "train", "--faceset", str(labelled), "--model", str(wide_dir), "--prior", "none",
                 "--max-iters", "3"]) == 3
    err = capsys.readouterr().err.strip()
    assert "prior outline" in err and "\n" not in err and "Traceback" not in err
