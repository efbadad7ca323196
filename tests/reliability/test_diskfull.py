"""Disk full: each long stage on a 20 MB volume stops with a one-line error, keeps its last good output
(faces, checkpoint, segments) and resumes once space is freed. The volume is a real tmpfs where the test
may mount one (root); elsewhere writes through facedouble.io.atomic get an injected ENOSPC quota."""

from __future__ import annotations

import json

import pytest

from facedouble.errors import FacedoubleError


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory, grid_clip):
    from tests.footage import frames_of, write_clip

    return write_clip(tmp_path_factory.mktemp("clip") / "shot.mp4", frames_of(grid_clip("lbbc2a"), 30))


def test_extract_on_a_full_disk_keeps_its_faces_and_resumes(small_volume, short_clip):
    from facedouble.extract.pipeline import ExtractConfig, extract
    from facedouble.faceset import Faceset

    out = small_volume.root / "faces"
    cfg = ExtractConfig(size=64, progress=False)
    small_volume.fill(200_000)
    with pytest.raises(FacedoubleError, match="no space left") as info:
        extract(short_clip, out, cfg)
    assert "\n" not in str(info.value)
    kept = Faceset(out).paths()
    assert 0 < len(kept) < 30
    for path in kept:  # every face on disk is whole (atomic writes): none half-written
        Faceset(out).meta(path)
    assert not list(out.glob(".*.tmp"))
    small_volume.free()
    report = extract(short_clip, out, cfg)
    assert report.faces_skipped_existing == len(kept) and len(Faceset(out).paths()) == 30


def test_train_checkpoint_on_a_full_disk_keeps_the_last_good_one(volume, grid_faceset, monkeypatch):
    from facedouble.nn.checkpoint import load_checkpoint
    from facedouble.train.trainer import Trainer
    from tests.train.conftest import FAST, install_consent

    install_consent(monkeypatch)
    # a tiny model's checkpoint (weights + optimizer state) is tens of MB; a failed save leaves its partial
    # checkpoint folder until the next good save prunes it, so the volume holds about three
    small_volume = volume(160)
    src, dst = grid_faceset("bbaf2n", 64, "full"), grid_faceset("lbbc2a", 64, "full")
    model = small_volume.root / "model"

    def train(iters: int) -> dict:
        trainer = Trainer.create(model, src, dst, "tiny", train_overrides={**FAST, "max_iters": iters})
        try:
            return trainer.run()
        finally:  # run() leaves the folder locked when a save fails; the CLI's process exit frees it
            trainer.close()

    train(2)
    good = json.loads((model / "latest.json").read_text())
    assert good["iteration"] == 2
    small_volume.fill(50_000)
    with pytest.raises(FacedoubleError, match="no space left") as info:
        train(4)
    assert "\n" not in str(info.value)
    assert json.loads((model / "latest.json").read_text()) == good  # the last good checkpoint stays published
    load_checkpoint(model)  # and it verifies
    small_volume.free()
    train(4)
    assert json.loads((model / "latest.json").read_text())["iteration"] == 4


def test_merge_on_a_full_disk_keeps_finished_segments_and_resumes(small_volume, grid_faceset):
    from facedouble.merge.pipeline import MergeConfig, MergeHooks, Outputs, merge, segment_records
    from tests.standin import ShiftSwapper

    if not small_volume.real:
        pytest.skip("merge segments are written by the encoder process: needs a real small volume (mount)")
    faces = grid_faceset("bbaf2n", 64, "full")
    outputs = Outputs(video=small_volume.root / "out.mp4")
    cfg = MergeConfig(segment_frames=15, batch=5)
    hooks = MergeHooks(post_composite=[lambda ctx: None])
    kept = []
    for leave in (150_000, 400_000):  # room for a few segments only; then for every segment but not the join
        small_volume.fill(leave)
        with pytest.raises(FacedoubleError) as info:
            merge(ShiftSwapper(64), faces, outputs, cfg, hooks=hooks, progress=False)
        # the encoder child's ENOSPC (issue 16: it used to hang merge) reads as every other full disk does
        assert "\n" not in str(info.value) and "no space left" in str(info.value)
        assert not list(outputs.work_dir().glob(".*.tmp*"))  # no half-written segment is left behind
        kept.append(len(segment_records(outputs.work_dir())))
        assert not outputs.video.exists()
        small_volume.free()
    assert 0 < kept[0] < kept[1] == 5  # the first run kept its finished segments; the second resumed them
    result = merge(ShiftSwapper(64), faces, outputs, cfg, hooks=hooks, progress=False)
    assert result.frames == 75


def _labelled(grid_faceset, folder):
    from bench.drills import label_faceset

    return label_faceset(grid_faceset("bbaf2n", 64, "full"), folder)


def test_mask_train_on_a_full_disk_keeps_the_last_good_checkpoint(volume, grid_faceset, tmp_path):
    from facedouble.mask.segmenter.train import SegTrainConfig, SegTrainer
    from facedouble.nn.checkpoint import LATEST, load_checkpoint

    small_volume = volume(40)  # a 64 px segmenter's checkpoint is ~5 MB; three are kept
    labelled = _labelled(grid_faceset, tmp_path / "labelled")
    model = small_volume.root / "seg"
    cfg = dict(batch_size=2, workers=0, threads=1, save_every_min=1e6, preview_every_min=1e6, bf16=False)

    def train(iters: int) -> dict:
        trainer = SegTrainer(model, [labelled], SegTrainConfig(max_iters=iters, **cfg), resolution=64)
        try:
            return trainer.run()
        finally:  # a failed save leaves the folder locked in this process (the CLI's exit frees it)
            trainer.close()

    train(2)
    good = json.loads((model / LATEST).read_text())
    small_volume.fill(200_000)
    with pytest.raises(FacedoubleError, match="no space left") as info:
        train(4)
    assert "\n" not in str(info.value)
    assert json.loads((model / LATEST).read_text()) == good  # the last good checkpoint stays published
    assert load_checkpoint(model).state["iteration"] == 2  # and it verifies
    small_volume.free()
    assert train(4)["iterations"] == 2  # resumed from 2, not from scratch
    assert not [p for p in model.rglob("*") if ".tmp" in p.name]


def test_read_only_model_folders_are_refused_before_any_work(read_only_dir, grid_faceset, tmp_path, monkeypatch):
    from facedouble.mask.segmenter import train as seg_train
    from facedouble.train import trainer as face_train
    from tests.train.conftest import FAST, install_consent

    install_consent(monkeypatch)

    def no_work(*args, **kwargs):
        raise AssertionError("work started on a read-only output")

    monkeypatch.setattr(face_train, "FaceBank", no_work)
    monkeypatch.setattr(seg_train, "LabelledFaces", no_work)
    faces = grid_faceset("bbaf2n", 64, "full")
    for model in (read_only_dir / "model", read_only_dir):  # a new folder in it, or the folder itself
        with pytest.raises(FacedoubleError, match="read-only") as info:
            face_train.Trainer.create(model, faces, grid_faceset("lbbc2a", 64, "full"), "tiny",
                                      train_overrides={**FAST, "max_iters": 1})
        assert "\n" not in str(info.value)
        with pytest.raises(FacedoubleError, match="read-only"):
            seg_train.SegTrainer(model, [faces], seg_train.SegTrainConfig(max_iters=1), resolution=64)
