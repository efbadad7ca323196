"""`facedouble farm openjd`: the bundle passes OpenJD's own validator and runs, in order, under openjd-cli."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import facedouble.cli as cli
from facedouble.errors import FacedoubleError
from facedouble.farm.openjd import ShotJob, job_template, write_bundle


def _job(tmp_path: Path, **kw) -> ShotJob:
    (tmp_path / "model").mkdir(exist_ok=True)
    kw = {"chunks": 3, "size": 64, **kw}
    return ShotJob(name="sh010", clip=tmp_path / "plate.mpg", model=tmp_path / "model", out=tmp_path / "out.mp4",
                   faceset=tmp_path / "sh010.faceset", workspace=tmp_path / "ws", **kw)


def test_template_validates_with_openjd_model_and_expands_to_n_chunks(tmp_path):
    model = pytest.importorskip("openjd.model")
    job = _job(tmp_path, label="SYNTHETIC")
    bundle = tmp_path / "bundle"
    write_bundle(job, bundle)
    template = model.decode_job_template(template=json.loads((bundle / "template.json").read_text()))
    values = model.preprocess_job_parameters(
        job_template=template, job_parameter_values=json.loads((bundle / "job_params.json").read_text()),
        job_template_dir=bundle, current_working_dir=tmp_path)
    created = model.create_job(job_template=template, job_parameter_values=values)
    assert [s.name for s in created.steps] == ["Extract", "Merge", "ConcatSign"]
    merge_step = created.steps[1]
    (chunk,) = merge_step.parameterSpace.taskParameterDefinitions.values()
    assert list(chunk.range) == [1, 2, 3]
    deadline = json.loads((bundle / "parameter_values.json").read_text())["parameterValues"]
    assert {p["name"] for p in deadline} == {"Clip", "Model", "Faceset", "Out", "Workspace", "Facedouble"}


def test_bundle_runs_under_openjd_cli_extract_then_chunks_then_concat(tmp_path):
    openjd = shutil.which("openjd", path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    if openjd is None:
        pytest.skip("openjd-cli not installed (requirements-dev.txt)")
    log = tmp_path / "calls.log"
    fake = tmp_path / "facedouble"  # records each command instead of rendering: this tests the job's shape
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    fake.chmod(0o755)
    write_bundle(_job(tmp_path, executable=str(fake)), tmp_path / "bundle")
    proc = subprocess.run([openjd, "run", str(tmp_path / "bundle" / "template.json"), "--step", "ConcatSign",
                           "--run-dependencies", "-p", f"file://{tmp_path / 'bundle' / 'job_params.json'}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    calls = log.read_text().splitlines()
    assert len(calls) == 5
    assert calls[0].startswith(f"extract {tmp_path / 'plate.mpg'} {tmp_path / 'sh010.faceset'} --size 64")
    assert sorted(c.split("--shard ")[1] for c in calls[1:4]) == ["1/3", "2/3", "3/3"]
    assert all(c.startswith(f"merge --model {tmp_path / 'model'} --target ") for c in calls[1:4])
    assert calls[4] == f"merge --concat --out {tmp_path / 'out.mp4'} --workspace {tmp_path / 'ws'}"


def test_cli_writes_the_bundle_and_refuses_bad_input(tmp_path, capsys):
    (tmp_path / "model").mkdir()
    args = ["farm", "openjd", "sh010", "--clip", str(tmp_path / "p.mpg"), "--model", str(tmp_path / "model"),
            "--out", str(tmp_path / "o.mp4"), "--size", "64", "--face-type", "full", "--bundle", str(tmp_path / "b")]
    assert cli.main(args + ["--chunks", "4"]) == 0
    template = json.loads((tmp_path / "b" / "template.json").read_text())
    assert template["specificationVersion"] == "jobtemplate-2023-09"
    assert template["steps"][1]["parameterSpace"]["taskParameterDefinitions"][0]["range"] == "1-4"
    assert "job bundle" in capsys.readouterr().out
    assert cli.main(args + ["--chunks", "0"]) == FacedoubleError.exit_code
    assert cli.main([*args[:5], "--model", str(tmp_path / "nope"), *args[7:]]) == FacedoubleError.exit_code
    with pytest.raises(FacedoubleError, match="chunks"):
        job_template(_job(tmp_path, chunks=0))


@pytest.mark.slow
def test_real_grid_shot_in_3_chunks_renders_a_signed_marked_video(tmp_path, grid_clip):
    """The bundle run by openjd-cli on a real GRID shot: extract, 3 merge chunks, concat + sign; verify accepts it."""
    import torch

    from facedouble.config import to_dict
    from facedouble.consent.records import add_identity
    from facedouble.consent.seal import seal_model
    from facedouble.nn import checkpoint as ck
    from facedouble.train.models.presets import build_model, preset
    from facedouble.trust.c2pa_sign import init_test_ca

    openjd = Path(sys.executable).parent / "openjd"
    if not openjd.exists():
        pytest.skip("openjd-cli not installed (requirements-dev.txt)")
    cfg = preset("tiny")
    torch.manual_seed(0)
    # merge re-checks the model's consent against the workspace's record at render time
    release = tmp_path / "release.txt"
    release.write_text("signed release of the test performer\n")
    record = add_identity(tmp_path / "ws", "test-performer", release)
    state = {"model": to_dict(cfg), "train": {}, "iteration": 1,
             "consent": {"name": record.name, "record_hash": record.record_hash}}
    ck.save_checkpoint(tmp_path / "model", build_model(cfg).state_dict(), {}, state)
    seal_model(tmp_path / "model", tmp_path / "ws")  # merge refuses a model whose consent is not sealed
    init_test_ca(tmp_path / "ws" / "certs")
    root = Path(__file__).resolve().parents[2]
    exe = tmp_path / "facedouble"  # the workers' install: this checkout, run by this interpreter
    exe.write_text(f'#!/bin/sh\nPYTHONPATH={root} exec {sys.executable} -m facedouble "$@"\n')
    exe.chmod(0o755)
    out = tmp_path / "out.mp4"
    assert cli.main(["farm", "openjd", "sh010", "--clip", str(grid_clip("bbaf2n")), "--model", str(tmp_path / "model"),
                     "--out", str(out), "--workspace", str(tmp_path / "ws"), "--segment-frames", "20",
                     "--executable", str(exe), "--bundle", str(tmp_path / "bundle")]) == 0
    proc = subprocess.run([str(openjd), "run", str(tmp_path / "bundle" / "template.json"), "--step", "ConcatSign",
                           "--run-dependencies", "-p", f"file://{tmp_path / 'bundle' / 'job_params.json'}"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "Chunks run: 5" in proc.stdout
    verify = subprocess.run([str(exe), "verify", str(out)], capture_output=True, text=True,
                            env={**os.environ, "FACEDOUBLE_WORKSPACE": str(tmp_path / "ws")})
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "C2PA manifest valid and watermark found" in verify.stdout
