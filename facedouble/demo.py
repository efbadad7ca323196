"""`facedouble demo`: the whole pipeline on the sample footage (GRID clips in ../shared/data/grid).

extract both clips -> bind the source identity to a demo consent record -> train a small model for a
bounded time -> merge (guarded, watermarked, record, C2PA-signed) -> verify -> quality report.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from facedouble.errors import InputError
from facedouble.extract.pipeline import ExtractConfig, extract

DEFAULT_GRID = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "grid"
DEFAULT_SOURCE, DEFAULT_TARGET = "bbaf2n.mpg", "lbbc2a.mpg"
IDENTITY = "demo-source"
# A small DF model that learns a recognisable face in minutes on 2 CPU cores (see README figures).
DEMO_MODEL = {"arch": "df", "opts": "u", "resolution": 64, "face_type": "full", "ae_dims": 128, "e_dims": 32,
              "d_dims": 32, "d_mask_dims": 16}
DEMO_TRAIN = {"batch_size": 8, "lr": 2e-4, "save_every_min": 2.0, "preview_every_min": 2.0}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `demo` command."""
    p = subparsers.add_parser(
        "demo", help="run the whole pipeline on the sample footage",
        description="Extract a source (wanted face) and a target (performer) clip, bind the source to a demo "
        "consent record, train a small model for --minutes, render the target with provenance marks, verify "
        "the render and write a quality report. Re-running resumes training where it stopped.")
    p.add_argument("source", nargs="?", help=f"source clip (default {DEFAULT_GRID / DEFAULT_SOURCE})")
    p.add_argument("target", nargs="?", help=f"target clip (default {DEFAULT_GRID / DEFAULT_TARGET})")
    p.add_argument("--out", default="demo-output", help="output folder (default ./demo-output)")
    p.add_argument("--minutes", type=float, default=4.0, help="training time budget (default 4)")
    p.add_argument("--max-iters", type=int, help="stop training at this iteration instead (for tests)")
    p.add_argument("--embed-every", type=int, default=3, help="report: identity on every Nth frame (default 3)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo and print where the results are."""
    from facedouble.config import to_dict
    from facedouble.consent import records as consent
    from facedouble.merge import pipeline
    from facedouble.nn.checkpoint import has_checkpoint
    from facedouble.report.build import ReportConfig, build_report
    from facedouble.report.html import write_report
    from facedouble.train.swapper import load_swapper
    from facedouble.train.trainer import Trainer
    from facedouble.trust.c2pa_sign import init_test_ca
    from facedouble.trust.render import CERTS_DIR, RenderProvenance, find_signer
    from facedouble.trust.verify import verify_file

    source = Path(args.source) if args.source else DEFAULT_GRID / DEFAULT_SOURCE
    target = Path(args.target) if args.target else DEFAULT_GRID / DEFAULT_TARGET
    for clip in (source, target):
        if not clip.exists():
            raise InputError(f"sample clip not found: {clip} (give two clips on the command line)")
    out = Path(args.out)
    workspace = out / "workspace"

    step("1/6 extract")
    src_faces, dst_faces = out / "source-faceset", out / "target-faceset"
    extract(source, src_faces, ExtractConfig(size=128, embed_every=5))
    extract(target, dst_faces, ExtractConfig(size=128, embed_every=5))

    step("2/6 consent record for the source identity, test signing certificate")
    if not (workspace / "identities").exists() or IDENTITY not in {r.name for r in consent.list_identities(workspace)}:
        release = out / "demo-release.txt"
        release.write_text(f"Demo consent: the speaker of {source.name} (GRID corpus, CC BY 4.0) recorded for "
                           "research use; used here only to demonstrate facedouble.\n", encoding="utf-8")
        # the reference faces tie the record to the person: here the source faces stand in for the release session
        consent.add_identity(workspace, IDENTITY, release, scope="facedouble demo on GRID sample footage",
                             reference=src_faces)
    consent.bind_faceset(workspace, IDENTITY, src_faces)
    if not (workspace / CERTS_DIR / "signer.pem").exists():
        init_test_ca(workspace / CERTS_DIR)
    cert, key = find_signer(workspace, None, None)

    step(f"3/6 train ({args.max_iters} iterations)" if args.max_iters else f"3/6 train ({args.minutes:g} min)")
    model_dir = out / "model"
    train = DEMO_TRAIN | ({"max_iters": args.max_iters} if args.max_iters else {"max_minutes": args.minutes})
    fresh = not has_checkpoint(model_dir)
    Trainer.create(model_dir, src_faces, dst_faces, None if not fresh else "tiny",
                   model_overrides=DEMO_MODEL if fresh else None, train_overrides=train, workspace=workspace).run()

    step("4/6 merge with provenance marks")
    model = load_swapper(model_dir)
    render = out / "render.mp4"
    if render.exists():  # a new model makes a new render
        render.unlink()
    shutil.rmtree(out / "render.mp4.parts", ignore_errors=True)
    config = pipeline.MergeConfig()
    plan = pipeline.load_plan(model, dst_faces, config, target)
    provenance = RenderProvenance.for_render(model_hash=model.model_hash, clip=plan.clip, settings=to_dict(config),
                                             fps=float(plan.fps), frame_count=plan.frame_count, cert=cert, key=key,
                                             workspace=workspace)
    result = pipeline.merge(model, dst_faces, pipeline.Outputs(video=render), config, clip=target,
                            hooks=provenance.hooks(), plan=plan)

    step("5/6 verify")
    verdict = verify_file(render, workspace=workspace)
    (out / "verify.json").write_text(json.dumps(verdict, indent=2, default=str), encoding="utf-8")

    step("6/6 quality report")
    report = build_report(render, target, src_faces, ReportConfig(embed_every=args.embed_every))
    page = write_report(report, out / "report")
    s = report["summary"]

    flicker = "n/a" if s["residual_flicker"] is None else f"{s['residual_flicker']:.2f}"
    print()
    print(f"render        {render}  ({result.frames} frames, residual flicker {flicker})")
    print(f"verify        {verdict['summary']} (exit code {verdict['exit_code']}); {out / 'verify.json'}")
    print(f"report        {page}")
    print(f"identity      closer to the source than to the target on {s['closer_to_source_share']:.0%} of frames")
    print(f"pose error    mean {s['pose_error']['mean']:.2f} deg; mouth error {s['mouth_error']['mean']:.3f} IOD")
    return 0


def step(text: str) -> None:
    """Print a stage heading."""
    print(f"== {text}", flush=True)
