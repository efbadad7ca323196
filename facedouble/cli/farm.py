"""`facedouble farm openjd SHOT`: write an Open Job Description bundle that renders a shot on a farm."""

from __future__ import annotations

import argparse
from pathlib import Path

from facedouble.config import add_workspace_arg, retire_flag
from facedouble.errors import FacedoubleError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `farm` command group."""
    farm = subparsers.add_parser("farm", help="render-farm job descriptions for a shot")
    sub = farm.add_subparsers(dest="farm_command", metavar="FORMAT", required=True)
    p = sub.add_parser(
        "openjd", help="write an Open Job Description job bundle (AWS Deadline Cloud, openjd run)",
        description="Write BUNDLE/template.json (jobtemplate-2023-09) and parameter_values.json for SHOT: "
        "extract the clip's faces once, merge in --chunks tasks (merge --shard i/N), then concat and sign. "
        "Run it locally with `openjd run BUNDLE/template.json --step ConcatSign --run-dependencies "
        "-p file://BUNDLE/job_params.json`, or submit it with `deadline bundle submit BUNDLE`.")
    p.add_argument("shot", help="shot name (the job's name)")
    p.add_argument("--clip", required=True, help="the shot's plate (target clip)")
    p.add_argument("--model", required=True, help="trained model folder")
    p.add_argument("--out", required=True, help="final render (.mp4/.mov/.mkv or PNG folder) on shared storage")
    p.add_argument("--faceset", help="target faceset folder to extract into (default OUT's folder/SHOT.faceset)")
    add_workspace_arg(p, "every task reads consent and certs/ there")
    p.add_argument("--chunks", type=int, default=3, help="merge tasks (default 3)")
    p.add_argument("--segment-frames", type=int, help="frames per merge segment (default merge's 50); each chunk "
                   "renders whole segments, so a clip needs at least CHUNKS segments")
    p.add_argument("--size", type=int, help="extract size (default: the model's resolution)")
    p.add_argument("--face-type", help="extract face type (default: the model's)")
    p.add_argument("--merge-config", metavar="FILE", help="merge settings TOML passed to every chunk (merge --config)")
    retire_flag(p, "--config", "--merge-config", "farm passes this TOML to every merge chunk")
    p.add_argument("--label", help='visible label burnt into every frame, e.g. "SYNTHETIC"')
    p.add_argument("--executable", default="facedouble", help="facedouble command on the workers")
    p.add_argument("--bundle", required=True, help="folder to write the job bundle into")
    p.set_defaults(func=run_openjd)


def _model_face(model: Path) -> tuple[int, str]:
    """The model's resolution and face type, which the extracted faceset must match."""
    from facedouble.nn import checkpoint as ck

    state = ck.load_checkpoint(model, with_optimizer=False).state["model"]
    return int(state["resolution"]), str(state.get("face_type", "full"))


def run_openjd(args: argparse.Namespace) -> int:
    """Write the bundle and print how to run it."""
    from facedouble.consent.records import default_workspace
    from facedouble.farm.openjd import ShotJob, write_bundle

    model, out = Path(args.model).resolve(), Path(args.out).resolve()
    if not model.is_dir():
        raise FacedoubleError(f"model folder {model} does not exist")
    size, face_type = args.size, args.face_type
    if size is None or face_type is None:
        m_size, m_face = _model_face(model)
        size, face_type = size or m_size, face_type or m_face
    job = ShotJob(name=args.shot, clip=Path(args.clip).resolve(), model=model, out=out,
                  faceset=Path(args.faceset).resolve() if args.faceset else out.parent / f"{args.shot}.faceset",
                  workspace=(Path(args.workspace) if args.workspace else default_workspace()).resolve(),
                  chunks=args.chunks, size=size, face_type=face_type,
                  merge_config=Path(args.merge_config).resolve() if args.merge_config else None, label=args.label,
                  segment_frames=args.segment_frames, executable=args.executable)
    template = write_bundle(job, args.bundle)
    print(f"job bundle         {template.parent} ({job.chunks} merge chunks)")
    print(f"run locally        openjd run {template} --step ConcatSign --run-dependencies "
          f"-p file://{template.parent / 'job_params.json'}")
    return 0
