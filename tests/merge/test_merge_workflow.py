"""Overrides, preview, shards + concat, resume after interruption, and the CLI, on a real GRID clip."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facedouble.errors import FacedoubleError, PolicyError
from facedouble.io.video import open_source
from facedouble.merge.overrides import OverrideRule, load_overrides
from facedouble.merge.pipeline import MergeConfig, MergeHooks, Outputs, finalize, preview
from tests.merge.conftest import consented
from tests.standin import ShiftSwapper
from tests.standin import merge_unmarked as merge

CONFIG = MergeConfig(segment_frames=20, batch=6, colour="rct")


def _pngs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.png"))}


@pytest.fixture(scope="module")
def single(target, tmp_path_factory):
    """Reference single run: MP4 + PNGs."""
    out = tmp_path_factory.mktemp("single")
    outputs = Outputs(video=out / "r.mp4", png_dir=out / "png", transforms=out / "t.json")
    result = merge(ShiftSwapper(96), target[0], outputs, CONFIG, progress=False)
    return result, outputs


def test_overrides_change_only_their_frames(target, single, tmp_path):
    sidecar = tmp_path / "fix.toml"
    sidecar.write_text('[[override]]\nframes = "30-33"\ncolour = "none"\nerode = 5\n\n'
                       '[[override]]\nframes = "60"\nblend = "poisson"\n')
    rules = load_overrides(sidecar)
    outputs = Outputs(png_dir=tmp_path / "png")
    merge(ShiftSwapper(96), target[0], outputs, CONFIG, rules, progress=False)
    ref, got = _pngs(single[1].png_dir), _pngs(outputs.png_dir)
    assert ref.keys() == got.keys()
    changed = {int(name[:6]) for name in ref if ref[name] != got[name]}
    assert changed == {30, 31, 32, 33, 60}


def test_override_sidecar_json_and_errors(tmp_path):
    path = tmp_path / "o.json"
    path.write_text('{"override": [{"frames": "5-", "scale": 1.1}]}')
    (rule,) = load_overrides(path)
    assert rule.range() == (5, None) and rule.scale == 1.1
    with pytest.raises(FacedoubleError, match="must look like"):
        OverrideRule(frames="a-b").range()
    path.write_text('{"override": [{"frames": "1", "colour": "nope"}]}')
    with pytest.raises(FacedoubleError, match="unknown colour transfer"):
        merge(ShiftSwapper(96), tmp_path, Outputs(png_dir=tmp_path / "x"), CONFIG, load_overrides(path))


def test_preview_matches_the_full_render(target, single, tmp_path):
    # The hooks are the caller's (render_preview brings the marks); an identity hook shows the swap alone.
    seen = []
    hooks = MergeHooks(post_composite=[lambda ctx: seen.append(ctx.index)])
    image = preview(ShiftSwapper(96), target[0], 12, hooks, CONFIG)
    full = cv2.imread(str(single[1].png_dir / "000012.png"))
    assert seen == [12] and np.array_equal(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), full)
    with pytest.raises(PolicyError, match="must be marked"):
        preview(ShiftSwapper(96), target[0], 12, MergeHooks(), CONFIG)


def test_shards_then_concat_equal_a_single_run(target, single, tmp_path):
    outputs = Outputs(video=tmp_path / "r.mp4", png_dir=tmp_path / "png", transforms=tmp_path / "t.json")
    for i in (2, 1, 3):  # any order, as on separate machines
        assert merge(ShiftSwapper(96), target[0], outputs, CONFIG, shard=(i, 3), progress=False) is None
    result = finalize(outputs)
    ref_result, ref = single
    assert outputs.video.read_bytes() == ref.video.read_bytes()  # lossless concat, deterministic encode
    assert _pngs(outputs.png_dir) == _pngs(ref.png_dir)
    assert outputs.transforms.read_text() == ref.transforms.read_text()
    assert result.flicker == ref_result.flicker and result.frames == 75


def test_concat_refuses_missing_shard(target, tmp_path):
    outputs = Outputs(video=tmp_path / "r.mp4")
    merge(ShiftSwapper(96), target[0], outputs, CONFIG, shard=(1, 2), progress=False)
    with pytest.raises(FacedoubleError, match="missing|not finished"):
        finalize(outputs)
    assert not outputs.video.exists()


def test_resume_after_interruption(target, single, tmp_path):
    outputs = Outputs(video=tmp_path / "r.mp4", png_dir=tmp_path / "png")
    seen: list[int] = []

    def crash(ctx):
        seen.append(ctx.index)
        if ctx.index == 47:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        merge(ShiftSwapper(96), target[0], outputs, CONFIG, hooks=MergeHooks(post_composite=[crash]), progress=False)
    assert not outputs.video.exists()
    seen.clear()
    hooks = MergeHooks(post_composite=[lambda ctx: seen.append(ctx.index)])
    result = merge(ShiftSwapper(96), target[0], outputs, CONFIG, hooks=hooks, progress=False)
    # segments 0-1 (frames 0-39) were finished and are not rendered again; the warm-up batch for
    # frame 39 (batches of 6 within 20-frame segments: frames 38-39) is, to measure flicker across it
    assert min(seen) == 38 and len(seen) == 75 - 38
    assert outputs.video.read_bytes() == single[1].video.read_bytes()
    assert _pngs(outputs.png_dir) == _pngs(single[1].png_dir)
    assert result.flicker == single[0].flicker


def test_changed_settings_refuse_a_stale_work_folder(target, tmp_path):
    outputs = Outputs(png_dir=tmp_path / "png")
    merge(ShiftSwapper(96), target[0], outputs, CONFIG, shard=(1, 2), progress=False)
    other = MergeConfig(segment_frames=20, batch=6, colour="lct")
    with pytest.raises(FacedoubleError, match="--fresh"):
        merge(ShiftSwapper(96), target[0], outputs, other, progress=False)
    assert merge(ShiftSwapper(96), target[0], outputs, other, fresh=True, progress=False).frames == 75


def test_cli_merge_preview_and_errors(target, tmp_path, monkeypatch, capsys, signing_workspace):
    import facedouble.cli as cli
    from facedouble.merge import model as model_module

    monkeypatch.setattr(model_module, "load_model", lambda path, **options: consented(ShiftSwapper(96)))
    faceset, clip = target
    out = tmp_path / "out.mp4"
    code = cli.main(["merge", "--model", str(tmp_path), "--target", str(faceset), "--out", str(out),
                     "--colour", "mkl", "--blur", "6", "--no-progress"])
    assert code == 0
    text = capsys.readouterr().out
    assert "flicker" in text and "frames             75" in text
    assert len(list(open_source(out))) == 75
    code = cli.main(["merge", "--model", "m", "--target", str(faceset), "--out", str(tmp_path / "p.png"),
                     "--preview", "5"])
    assert code == 0 and (tmp_path / "p.png").exists()
    bad = tmp_path / "bad.toml"
    bad.write_text('[[override]]\nframes = "3"\ncolour = "bogus"\n')
    code = cli.main(["merge", "--model", "m", "--target", str(faceset), "--out", str(tmp_path / "x.mp4"),
                     "--overrides", str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and "unknown colour transfer 'bogus'" in err and len(err.strip().splitlines()) == 1
    code = cli.main(["merge", "--model", "m", "--target", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "x.mp4")])
    err = capsys.readouterr().err
    assert code != 0 and "target not found" in err and len(err.strip().splitlines()) == 1


def test_cli_merge_of_a_bare_clip_extracts_it_first(target, tmp_path, monkeypatch, capsys, signing_workspace):
    import facedouble.cli as cli
    from facedouble.merge import model as model_module

    asked = {}
    monkeypatch.setattr(model_module, "load_model",
                        lambda path, **options: asked.update(options) or consented(ShiftSwapper(96)))
    clip = tmp_path / "clip.mpg"
    clip.write_bytes(target[1].read_bytes())
    out = tmp_path / "o.mp4"
    assert cli.main(["merge", "--model", "m", "--target", str(clip), "--out", str(out), "--no-progress",
                     "--conv", "direct", "--precision", "fp32"]) == 0
    assert asked == {"precision": "fp32", "conv_algo": "direct"}
    assert len(list(open_source(out))) == 75
    assert len(list((tmp_path / "o.mp4.parts" / "target-faceset").glob("*.png"))) >= 74


def test_cli_refuses_a_model_without_consent_and_a_render_without_a_signer(target, tmp_path, monkeypatch, capsys):
    import facedouble.cli as cli
    from facedouble.errors import PolicyError
    from facedouble.merge import model as model_module

    monkeypatch.setenv("FACEDOUBLE_WORKSPACE", str(tmp_path / "empty-ws"))
    monkeypatch.setattr(model_module, "load_model", lambda path, **options: ShiftSwapper(96))
    out = tmp_path / "o.mp4"
    assert cli.main(["merge", "--model", "m", "--target", str(target[0]), "--out", str(out)]) == PolicyError.exit_code
    assert "no consent record" in capsys.readouterr().err
    from facedouble.consent.records import add_identity

    (tmp_path / "release.txt").write_text("signed\n")
    record = add_identity(tmp_path / "empty-ws", "test-performer", tmp_path / "release.txt")  # consent, no signer
    model = ShiftSwapper(96)
    model.consent = {"name": record.name, "record_hash": record.record_hash}
    monkeypatch.setattr(model_module, "load_model", lambda path, **options: model)
    assert cli.main(["merge", "--model", "m", "--target", str(target[0]), "--out", str(out)]) == PolicyError.exit_code
    assert "certs init" in capsys.readouterr().err
    assert not out.exists()


def test_frames_without_a_face_pass_through_untouched(target, target_frames, tmp_path):
    import shutil

    faceset = tmp_path / "faces"
    shutil.copytree(target[0], faceset)
    removed = {10, 11, 12, 40}
    for path in faceset.glob("*.png"):
        if int(path.stem.split("_")[-2]) in removed:  # <clip>_<frame>_t<track>.png
            path.unlink()
    outputs = Outputs(png_dir=tmp_path / "png")
    result = merge(ShiftSwapper(96), faceset, outputs, CONFIG, progress=False)
    assert result.frames == 75 and result.frames_with_faces == 75 - len(removed)
    for index in range(75):
        image = cv2.cvtColor(cv2.imread(str(outputs.png_dir / f"{index:06d}.png")), cv2.COLOR_BGR2RGB)
        assert np.array_equal(image, target_frames[index]) == (index in removed), index


def test_interrupt_in_the_model_thread_then_resume(target, single, tmp_path):
    class Flaky(ShiftSwapper):
        def swap(self, faces):
            if self.calls == 6:  # Ctrl-C arrives while the main thread runs the model
                raise KeyboardInterrupt
            return super().swap(faces)

    outputs = Outputs(video=tmp_path / "r.mp4", png_dir=tmp_path / "png")
    with pytest.raises(KeyboardInterrupt):
        merge(Flaky(96), target[0], outputs, CONFIG, progress=False)
    work = outputs.work_dir()
    assert sorted(p.name for p in work.glob("seg_*.json")) == ["seg_00000.json"]
    assert not list(work.glob(".*.tmp*"))  # the unfinished segment was discarded
    merge(ShiftSwapper(96), target[0], outputs, CONFIG, progress=False)
    assert _pngs(outputs.png_dir) == _pngs(single[1].png_dir)


def test_resume_when_the_clip_ends_on_a_segment_boundary(target, tmp_path):
    """A run interrupted after its last full segment was closed, before the end of the clip was seen."""
    import json

    config = MergeConfig(segment_frames=25, batch=5)  # 75 frames = exactly 3 segments
    outputs = Outputs(png_dir=tmp_path / "png")
    merge(ShiftSwapper(96), target[0], outputs, config, progress=False)
    record_path = outputs.work_dir() / "seg_00002.json"
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps(record | {"last": False}))  # as an interrupted run leaves it
    with pytest.raises(FacedoubleError, match="missing"):
        finalize(outputs)
    assert merge(ShiftSwapper(96), target[0], outputs, config, progress=False).frames == 75
    assert json.loads(record_path.read_text())["last"] is True


def test_concat_refuses_a_shard_rendered_with_other_settings(target, tmp_path):
    import shutil

    first, other = Outputs(video=tmp_path / "a" / "r.mp4"), Outputs(video=tmp_path / "b" / "r.mp4")
    merge(ShiftSwapper(96), target[0], first, CONFIG, shard=(1, 2), progress=False)
    merge(ShiftSwapper(96), target[0], other, MergeConfig(segment_frames=20, batch=6, colour="lct"), shard=(2, 2),
          progress=False)
    for path in other.work_dir().glob("seg_*"):  # as when copying shard folders from several machines
        shutil.copy(path, first.work_dir())
    with pytest.raises(FacedoubleError, match="other settings"):
        finalize(first)
