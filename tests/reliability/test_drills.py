"""Kill drills (issue 16), short: the code of `python -m bench.drills` with a point or two per stage.

extract, train, merge, `mask train` and a studio job are each SIGKILLed mid-run (merge and train also the
moment their result is published), re-run to completion and compared with an uninterrupted run: extract's
faces byte for byte, train's and mask train's weights and optimizer state, merge's frames, timestamps, audio
and pixels; nothing half-written may be left under a final name, and no temporary file after the re-run.
The stages run in processes forked from a preloaded server, so a drill costs seconds.
"""

from __future__ import annotations

POINTS = {"extract": 1, "train": 2, "merge": 2, "mask-train": 1, "studio": 1}


def test_every_stage_survives_kill_9(tmp_path, grid_clip):
    from bench.drills import SMALL, run_drills, table

    grid_clip("bbaf2n"), grid_clip("lbbc2a")  # skips without the shared footage
    lines: list[str] = []
    outcomes = run_drills(tmp_path, list(POINTS), POINTS, seed=16, log=lines.append, size=SMALL)
    report = "\n".join(lines) + "\n" + table(outcomes)
    print(report)
    assert [o.stage for o in outcomes] == list(POINTS)
    for outcome in outcomes:
        assert outcome.drills == POINTS[outcome.stage]
        assert outcome.lost == 0 and outcome.partial == 0, report
        assert outcome.survived == outcome.drills, report
    # the kills must land mid-run (the published-result drills always do) or the drills prove nothing
    assert sum(o.hit for o in outcomes) >= 2, report


def test_a_render_under_its_final_name_must_be_whole(tmp_path):
    """The drills' own check: a cut-short render under its final name counts as corrupted."""
    from bench.drills import SMALL, make_stages

    merge = make_stages(dict.fromkeys(("clip", "src_faces", "dst_faces", "workspace", "model", "labelled"),
                                      tmp_path), SMALL)["merge"]
    assert merge.watch(tmp_path) == tmp_path / "render.mp4"
    assert merge.after_kill(tmp_path, {}) == []  # no render yet: nothing to pick up
    (tmp_path / "render.mp4").write_bytes(b"\0\0\0\x18ftypmp42")
    problems = merge.after_kill(tmp_path, {"frames": 8})
    assert problems and "render.mp4" in problems[0]


def test_temp_files_of_killed_writes_are_removed(tmp_path):
    from facedouble.io.atomic import remove_temps

    # what a kill -9 mid-write leaves (mkstemp names of atomic_open and the segment and join writers)
    temps = [".bbaf2n_1a2b3c4d_000003_t00.png.k2j3h4g5.tmp", ".seg_00001.mp4.ab_cd9xy.tmp.mp4",
             ".render.mp4.q1w2e3r4.tmp.mp4", ".render.mp4.render.json.oh8l04r7.tmp"]
    kept = [".extract.lock", ".lock", "bbaf2n_1a2b3c4d_000003_t00.png", "notes.tmp", "latest.json"]
    for name in temps + kept:
        (tmp_path / name).write_bytes(b"x")
    assert remove_temps(tmp_path, "render.mp4") == 2  # only that output's (a shared folder)
    assert remove_temps(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)
