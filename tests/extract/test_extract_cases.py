"""Extraction edge cases on footage made from the real GRID clips."""

import json

import numpy as np
import pytest

from facedouble.cli import main
from facedouble.errors import InputError
from facedouble.extract.pipeline import ExtractConfig, extract
from facedouble.faceset import Faceset, read_face
from tests.footage import frames_of, write_clip


def test_gap_between_two_hits_is_filled_from_neighbours(tmp_path, grid_clip):
    images = frames_of(grid_clip("lrwp9a"), 30)
    for i in (12, 13):  # the face vanishes for two frames
        images[i] = np.zeros_like(images[i]) + images[i][:40, :40].mean((0, 1)).astype(np.uint8)
    clip = write_clip(tmp_path / "gap.mp4", images)
    report = extract(clip, tmp_path / "out", ExtractConfig(size=64, progress=False))
    assert report.frames_without_face == []
    metas = {m.frame_index: m for _, m in Faceset(tmp_path / "out").metas()}
    assert metas[12].interpolated and metas[13].interpolated and not metas[11].interpolated
    # filled landmarks lie between the neighbours'
    mid = (metas[11].landmarks + metas[14].landmarks) / 2
    assert np.abs(metas[12].landmarks - mid).max() < np.abs(metas[11].landmarks - metas[14].landmarks).max() + 1
    assert len({m.track_id for m in metas.values()}) == 1


def test_reference_keeps_only_the_wanted_person(tmp_path, grid_clip, grid_faceset):
    left, right = frames_of(grid_clip("bbaf2n"), 20), frames_of(grid_clip("sbwe5n"), 20)
    clip = write_clip(tmp_path / "two.mp4", [np.hstack([a, b]) for a, b in zip(left, right, strict=True)])
    both = extract(clip, tmp_path / "both", ExtractConfig(size=64, progress=False))
    assert len(both.tracks) == 2
    ref = grid_faceset("sbwe5n", embed_every=5)
    only = extract(clip, tmp_path / "only", ExtractConfig(size=64, reference=str(ref), progress=False))
    metas = [m for _, m in Faceset(tmp_path / "only").metas()]
    assert len(metas) >= 19 and only.faces_rejected_reference >= 19
    assert all(m.landmarks[:, 0].mean() > 360 for m in metas)  # all on the right half


def test_rerun_resumes_and_rewrites_only_missing_faces(tmp_path, grid_clip):
    clip = write_clip(tmp_path / "c.mp4", frames_of(grid_clip("lbbc2a"), 20))
    out = tmp_path / "out"
    extract(clip, out, ExtractConfig(size=64, progress=False))
    paths = Faceset(out).paths()
    before = {p.name: p.read_bytes() for p in paths}
    for p in paths[5:8]:
        p.unlink()
    report = extract(clip, out, ExtractConfig(size=64, progress=False))
    assert report.faces_written == 3 and report.faces_skipped_existing == 17
    assert {p.name: p.read_bytes() for p in Faceset(out).paths()} == before


def test_image_folder_and_jpeg_output(tmp_path, grid_clip):
    import cv2

    folder = tmp_path / "frames"
    folder.mkdir()
    for i, image in enumerate(frames_of(grid_clip("sbia1a"), 4)):
        cv2.imwrite(str(folder / f"shot_{i:02d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    extract(folder, tmp_path / "out", ExtractConfig(size=96, face_type="whole", image_format="jpg", progress=False))
    faces = Faceset(tmp_path / "out").paths()
    assert len(faces) == 4 and all(p.suffix == ".jpg" for p in faces)
    image, meta = read_face(faces[0])
    assert image.shape == (96, 96, 3) and meta.face_type == "whole"


def test_video_without_faces_is_an_error_and_writes_no_faces(tmp_path, grid_clip):
    background = [img[:96, :96] for img in frames_of(grid_clip("bbaf2n"), 10)]  # studio wall, no face
    clip = write_clip(tmp_path / "wall.mp4", background)
    with pytest.raises(InputError, match="no faces found"):
        extract(clip, tmp_path / "out", ExtractConfig(size=64, progress=False))
    assert not list((tmp_path / "out").glob("*.png"))


def test_truncated_and_fake_videos_exit_with_one_line_error(tmp_path, grid_clip, capsys):
    clip = write_clip(tmp_path / "ok.mp4", frames_of(grid_clip("bbaf2n"), 25))
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    fake = tmp_path / "notes.mp4"
    fake.write_text("meeting notes, not a video\n")
    for bad in (truncated, fake):
        out = tmp_path / f"out_{bad.stem}"
        assert main(["extract", str(bad), str(out), "--no-progress"]) == InputError.exit_code
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and str(bad) in err and "Traceback" not in err
        assert not out.exists()


def test_cli_extract_prints_run_report(tmp_path, grid_clip, capsys):
    clip = write_clip(tmp_path / "c.mp4", frames_of(grid_clip("swiz3n"), 10))
    assert main(["extract", str(clip), str(tmp_path / "out"), "--size", "64", "--no-progress", "--debug"]) == 0
    out = capsys.readouterr().out
    assert "faces written      10" in out and "frames without face 0" in out
    assert len(list((tmp_path / "out" / "_debug").glob("*.jpg"))) == 10
    report = json.loads((tmp_path / "out" / "extract-report.json").read_text())
    assert report["config"]["size"] == 64


def test_tracks_end_at_shot_cuts(tmp_path, grid_clip):
    a, b = frames_of(grid_clip("bbaf2n"), 12), frames_of(grid_clip("lwbsza"), 12)
    clip = write_clip(tmp_path / "cut.mp4", a + b)
    report = extract(clip, tmp_path / "out", ExtractConfig(size=64, progress=False))
    assert report.shot_cuts == 1
    tracks = {m.frame_index: m.track_id for _, m in Faceset(tmp_path / "out").metas()}
    assert len(set(tracks.values())) == 2
    assert {tracks[i] for i in range(12)} != {tracks[i] for i in range(12, 24)}


def test_explicit_input_is_refused_and_leaves_no_faces(tmp_path, grid_clip, monkeypatch):
    """The guard's real detector passes GRID (tests/trust); here it is told a frame is explicit."""
    from facedouble.errors import PolicyError
    from facedouble.policy import guard

    monkeypatch.setattr(guard, "score_frames", lambda frames: [0.99 for _ in frames])
    clip = write_clip(tmp_path / "c.mp4", frames_of(grid_clip("lbbc2a"), 30))
    with pytest.raises(PolicyError, match="explicit content"):
        extract(clip, tmp_path / "out", ExtractConfig(size=64, progress=False))
    assert not list((tmp_path / "out").glob("*.png")) if (tmp_path / "out").exists() else True
