"""The documented API: examples/api_example.py runs extract -> train -> merge -> verify on GRID, and the
train start/stop/status calls work on the model it leaves behind."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

from facedouble import api
from facedouble.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]


def _example():
    spec = importlib.util.spec_from_file_location("api_example", ROOT / "examples" / "api_example.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example_run(tmp_path_factory, grid_clip):
    """The example, run once (tiny model, 40 iterations: see test_cli.test_demo_runs_the_whole_pipeline):
    its results and the progress events it reported."""
    grid = grid_clip("bbaf2n").parent
    grid_clip("lbbc2a")
    out = tmp_path_factory.mktemp("api_example")
    events = []
    got = _example().run(grid, out, iterations=40, progress=events.append)
    return got, events, out


@pytest.mark.slow
def test_example_runs_the_pipeline_and_the_render_verifies(example_run):
    got, events, _ = example_run
    verdict = got["verify"]
    assert verdict["exit_code"] == 0, verdict["summary"]
    assert verdict["c2pa"]["status"] == "valid"
    assert verdict["watermark"]["found"] and verdict["watermark"]["matches_record"]
    assert verdict["render_record"]["identity"]["name"] == "example-source"
    assert got["train"]["iteration"] == 40 and got["status"]["iteration"] == 40 and not got["status"]["running"]
    assert got["merge"].frames >= got["target_faces"] > 0
    # one progress mechanism: per-iteration train events and per-frame merge events, each stage finished once
    by_stage = {stage: [e for e in events if e.stage == stage] for stage in ("train", "merge")}
    assert [e.done for e in by_stage["train"] if not e.finished] == list(range(1, 41))
    assert "loss_src" in by_stage["train"][0].info
    assert len([e for e in by_stage["merge"] if not e.finished]) == got["merge"].frames
    assert all(sum(e.finished for e in evs) == 1 for evs in by_stage.values())
    assert events[-1].to_dict()["stage"] == "merge"


@pytest.mark.slow
def test_train_in_the_background_then_status_and_stop(example_run):
    """start(background) -> status says running -> stop saves like Ctrl-C -> status says stopped, further on."""
    _, _, out = example_run
    model, ws = out / "model", out / "workspace"
    assert api.train_stop(model) is False  # nothing runs there
    job = api.train_start(model, out / "source-faceset", out / "target-faceset", workspace=ws, background=True,
                          train={"max_iters": 10_000, "workers": 0, "batch_size": 2})
    try:
        deadline = time.monotonic() + 90
        while not api.train_status(model)["running"]:
            assert job.process.poll() is None, job.log_file.read_text()
            assert time.monotonic() < deadline, "the background trainer never took the model folder"
            time.sleep(0.2)
        assert api.train_status(model)["pid"] == job.pid
        time.sleep(2.0)  # let it train a little
        assert api.train_stop(model, timeout=60) is True
        assert job.wait(30) == 130  # interrupted: saved, "re-run to resume"
    finally:
        if job.process.poll() is None:
            job.process.kill()
    status = api.train_status(model)
    assert not status["running"] and status["iteration"] >= 2


def test_api_settings_are_validated_in_one_line(tmp_path):
    with pytest.raises(UsageError, match="unknown setting 'bogus'"):
        api.extract(tmp_path / "x.mp4", tmp_path / "out", bogus=1)
    with pytest.raises(UsageError, match="x264_preset"):
        api.merge_render("m", tmp_path, tmp_path / "o.mp4", preset="fast")
    with pytest.raises(UsageError, match="iterations"):
        api.train_start(tmp_path / "m", tmp_path, tmp_path, iterations=0)
    status = api.train_status(tmp_path / "none")
    assert status == {"model_dir": str(tmp_path / "none"), "running": False, "pid": None, "iteration": 0}


@pytest.mark.slow
def test_curate_labels_and_a_marked_preview_on_the_example_outputs(example_run, tmp_path):
    got, _, out = example_run
    faces = out / "target-faceset"
    ranked = api.sort_faceset(faces, "blur", dry_run=True).ranked
    assert len(ranked) == got["target_faces"] and api.faceset_stats(faces)["faces"] == got["target_faces"]
    labels = tmp_path / "labels.json"
    assert api.mask_labels_export(faces, labels) == 0 and api.mask_labels_import(faces, labels) == 0
    frame = api.merge_preview(out / "model", faces, 10, workspace=out / "workspace", batch=4)
    assert frame.dtype.name == "uint8" and frame.ndim == 3 and frame.shape[2] == 3
