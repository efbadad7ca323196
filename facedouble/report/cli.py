"""`facedouble report RENDER --target TARGET --source SOURCE`."""

from __future__ import annotations

import argparse
from pathlib import Path

from facedouble.report.build import ReportConfig, build_report
from facedouble.report.html import write_report


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `report` command."""
    p = subparsers.add_parser(
        "report", help="measure a render: identity, pose, expression, gaze, residual flicker, seam, SSIM; JSON + HTML",
        description="Compare a rendered clip with its target clip frame by frame and with the source identity. "
        "Writes report.json and index.html (plots over time, thumbnails of the worst frames).")
    p.add_argument("render", help="rendered clip")
    p.add_argument("--target", required=True, help="the target clip the render was made from")
    p.add_argument("--source", required=True, help="source faceset (or clip) of the wanted identity")
    p.add_argument("--out", help="report folder (default: RENDER's name + '-report')")
    p.add_argument("--embed-every", type=int, default=1, help="identity on every Nth frame (default 1)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build and write the report, print its summary."""
    report = build_report(args.render, args.target, args.source,
                          ReportConfig(embed_every=max(1, args.embed_every), progress=args.progress))
    out = Path(args.out) if args.out else Path(args.render).with_name(Path(args.render).stem + "-report")
    page = write_report(report, out)
    s = report["summary"]
    print(f"frames {s['frames']}, face found in {s['face_share']:.1%}")
    if s["closer_to_source_share"] is not None:
        print(f"identity closer to source than to target on {s['closer_to_source_share']:.1%} of frames")
    for key in ("pose_error", "mouth_error", "eyes_error", "gaze_error", "seam_score", "ssim"):
        if s[key]:
            print(f"{key:12s} mean {s[key]['mean']:.3f}  max {s[key]['max']:.3f}")
    if s["residual_flicker"] is not None:
        print(f"residual flicker {s['residual_flicker']:.3f} (0 = moves exactly as the target does)")
    print(f"report: {page}")
    return 0
