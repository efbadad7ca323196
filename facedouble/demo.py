"""`facedouble demo`: the pipeline on the bundled sample footage (GRID clips in ../shared/data/grid).

Today it runs the stages that exist (extract and curate statistics); train, merge, verify and report are
added to it as they land.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from facedouble.errors import InputError
from facedouble.extract.pipeline import ExtractConfig, extract
from facedouble.faceset.curate import faceset_stats

DEFAULT_GRID = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "grid"
DEFAULT_SOURCE, DEFAULT_TARGET = "bbaf2n.mpg", "lbbc2a.mpg"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `demo` command."""
    p = subparsers.add_parser("demo", help="run the pipeline end to end on the sample footage",
                              description="Extract the source (wanted face) and target (performer) clips into "
                              "facesets under OUT and print their statistics.")
    p.add_argument("source", nargs="?", help=f"source clip (default {DEFAULT_GRID / DEFAULT_SOURCE})")
    p.add_argument("target", nargs="?", help=f"target clip (default {DEFAULT_GRID / DEFAULT_TARGET})")
    p.add_argument("--out", default="demo-output", help="output folder (default ./demo-output)")
    p.add_argument("--size", type=int, default=128, help="aligned face size (default 128)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo and print where the results are."""
    source = Path(args.source) if args.source else DEFAULT_GRID / DEFAULT_SOURCE
    target = Path(args.target) if args.target else DEFAULT_GRID / DEFAULT_TARGET
    for clip in (source, target):
        if not clip.exists():
            raise InputError(f"sample clip not found: {clip} (give two clips on the command line)")
    out = Path(args.out)
    results = {}
    for role, clip in (("source", source), ("target", target)):
        print(f"== extract {role}: {clip}")
        folder = out / f"{role}-faceset"
        report = extract(clip, folder, ExtractConfig(size=args.size))
        results[role] = (folder, report)
    for role, (folder, report) in results.items():
        stats = faceset_stats(folder)
        print(f"{role:6s} faceset {folder}: {stats['faces']} faces from {report.frames_read} frames, "
              f"median yaw {stats['yaw']['median']} deg, median sharpness {stats['blur']['median']}")
    print("demo finished: train, merge, verify and report stages are not built yet")
    return 0
