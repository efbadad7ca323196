"""An Open Job Description (jobtemplate-2023-09) bundle for one shot.

Three steps, each a plain `facedouble` command, so any OpenJD runner (AWS Deadline Cloud, `openjd run`)
can schedule them:

    Extract      facedouble extract CLIP FACESET --size S --face-type T          (1 task)
    Merge        facedouble merge --model M --target FACESET --clip CLIP --out OUT --shard {{Task.Param.Chunk}}/N
                 (N tasks, Chunk = 1..N; each renders a contiguous run of segments into OUT.parts/)
    ConcatSign   facedouble merge --concat --out OUT                           (1 task: remux + C2PA sign)

Merge depends on Extract and ConcatSign on Merge. Every path is a job parameter (type PATH), so a farm's
path-mapping rules translate them per worker; the shards need OUT.parts/ on shared storage.

On AWS Deadline Cloud the bundle is submitted as is (`deadline bundle submit BUNDLE`, values from
parameter_values.json): each step becomes a Deadline step and each Chunk value one task, which the
fleet's workers pick up in parallel once Extract is done. On OpenCue the same three steps map to three
layers of one job: Extract a single-frame layer, Merge a layer with frame range 1-N and chunk size 1
(CUE_IFRAME gives the chunk, so the command is `merge ... --shard #IFRAME#/N`) depending on Extract
layer-on-layer, and ConcatSign a single-frame layer depending on Merge.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from facedouble.errors import FacedoubleError
from facedouble.io.atomic import atomic_write_json

SPEC = "jobtemplate-2023-09"
TEMPLATE_FILE = "template.json"
PARAMETERS_FILE = "parameter_values.json"  # AWS Deadline Cloud's bundle format: {"parameterValues": [...]}
OPENJD_PARAMS_FILE = "job_params.json"  # `openjd run -p file://...`: a flat {"Name": value} map


@dataclasses.dataclass
class ShotJob:
    """What the bundle renders: one clip, one model, N chunks."""

    name: str
    clip: Path
    model: Path
    out: Path
    faceset: Path
    workspace: Path
    chunks: int = 3
    size: int = 128
    face_type: str = "full"
    merge_config: Path | None = None
    label: str | None = None
    segment_frames: int | None = None  # merge's resumable segment; a chunk is a run of whole segments
    executable: str = "facedouble"

    def validate(self) -> None:
        """Raise FacedoubleError for a job that cannot be split or named."""
        if not 1 <= self.chunks <= 10000:
            raise FacedoubleError(f"--chunks must be 1..10000, got {self.chunks}")
        if not self.name.strip():
            raise FacedoubleError("the shot name is empty")


def _path_param(name: str, kind: str, flow: str, description: str) -> dict[str, Any]:
    # no default: OpenJD resolves a PATH default relative to the bundle, so the shot's absolute paths
    # travel as parameter values instead (parameter_values.json / job_params.json)
    return {"name": name, "type": "PATH", "objectType": kind, "dataFlow": flow, "description": description}


def parameter_values(job: ShotJob) -> dict[str, str]:
    """The shot's values for the template's parameters."""
    values = {"Clip": job.clip, "Model": job.model, "Faceset": job.faceset, "Out": job.out,
              "Workspace": job.workspace, "Facedouble": job.executable}
    if job.merge_config is not None:
        values["MergeConfig"] = job.merge_config
    return {k: str(v) for k, v in values.items()}


def _action(args: list[str]) -> dict[str, Any]:
    # `command` is a job parameter so a farm can point at its own install (a venv, a container wrapper)
    return {"actions": {"onRun": {"command": "{{Param.Facedouble}}", "args": args}}}


def job_template(job: ShotJob) -> dict[str, Any]:
    """The OpenJD job template as a dict (JSON-serialisable)."""
    job.validate()
    params: list[dict[str, Any]] = [
        _path_param("Clip", "FILE", "IN", "the shot's plate (target clip)"),
        _path_param("Model", "DIRECTORY", "IN", "trained model folder (carries its consent record)"),
        _path_param("Faceset", "DIRECTORY", "INOUT", "target faceset, written by Extract"),
        _path_param("Out", "FILE", "OUT", "final render; chunks go to OUT.parts/ (shared storage)"),
        _path_param("Workspace", "DIRECTORY", "IN", "workspace with consent records and certs/"),
        {"name": "Facedouble", "type": "STRING", "default": job.executable,
         "description": "the facedouble executable on the workers"},
    ]
    merge_args = ["merge", "--model", "{{Param.Model}}", "--target", "{{Param.Faceset}}", "--clip", "{{Param.Clip}}",
                  "--out", "{{Param.Out}}", "--workspace", "{{Param.Workspace}}", "--no-progress"]
    if job.merge_config is not None:
        params.append(_path_param("MergeConfig", "FILE", "IN", "merge settings (TOML)"))
        merge_args += ["--config", "{{Param.MergeConfig}}"]
    if job.label:
        merge_args += ["--label", job.label]
    if job.segment_frames:
        merge_args += ["--segment-frames", str(job.segment_frames)]
    steps = [
        {"name": "Extract",
         "script": _action(["extract", "{{Param.Clip}}", "{{Param.Faceset}}", "--size", str(job.size),
                            "--face-type", job.face_type, "--no-progress"])},
        {"name": "Merge",
         "dependencies": [{"dependsOn": "Extract"}],
         "parameterSpace": {"taskParameterDefinitions": [
             {"name": "Chunk", "type": "INT", "range": f"1-{job.chunks}"}]},
         "script": _action(merge_args + ["--shard", f"{{{{Task.Param.Chunk}}}}/{job.chunks}"])},
        {"name": "ConcatSign",
         "dependencies": [{"dependsOn": "Merge"}],
         "script": _action(["merge", "--concat", "--out", "{{Param.Out}}", "--workspace", "{{Param.Workspace}}"]
                           + (["--label", job.label] if job.label else []))},
    ]
    return {"specificationVersion": SPEC, "name": f"facedouble {job.name}",
            "description": f"facedouble shot {job.name}: extract, merge in {job.chunks} chunks, concat + sign",
            "parameterDefinitions": params, "steps": steps}


def write_bundle(job: ShotJob, bundle_dir: str | Path) -> Path:
    """Write BUNDLE/template.json, parameter_values.json and job_params.json; returns the template's path."""
    bundle = Path(bundle_dir)
    bundle.mkdir(parents=True, exist_ok=True)
    template = job_template(job)
    values = parameter_values(job)
    atomic_write_json(bundle / TEMPLATE_FILE, template)
    deadline = {"parameterValues": [{"name": k, "value": v} for k, v in values.items()]}
    atomic_write_json(bundle / PARAMETERS_FILE, deadline)
    atomic_write_json(bundle / OPENJD_PARAMS_FILE, values)
    return bundle / TEMPLATE_FILE
