"""`facedouble report RENDER --target TARGET --source SOURCE`."""

from __future__ import annotations

import argparse

from facedouble.config import StageConfig, add_config_args, config_from_args, show_defaults
from facedouble.report.build import ReportConfig


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
    add_config_args(p, "report")
    add_config_flags(p)
    p.set_defaults(func=run)


def add_config_flags(p: argparse.ArgumentParser) -> None:
    """The flags of ReportConfig's settings (also used by `facedouble config show report`)."""
    p.add_argument("--embed-every", type=int, help="identity embedding on every Nth frame")
    p.add_argument("--worst", type=int, help="worst frames listed per metric")
    p.add_argument("--labels", help="faceset of the target clip whose labels' exclude polygons mark occluders")
    p.add_argument("--no-hands", dest="hands", action="store_false", default=None,
                   help="do not look for hands over the target's face (occluders the render should leave)")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None, help="no progress bars")
    show_defaults(p, ReportConfig())


def effective(args: argparse.Namespace) -> dict:
    """The report settings this command line gives, validated."""
    return {"": config_from_args(ReportConfig, args)}


CONFIG = StageConfig("report", add_config_flags, effective, "report settings (ReportConfig)")


def run(args: argparse.Namespace) -> int:
    """Build and write the report, print its summary."""
    from facedouble import api

    report, page = api.report(args.render, args.target, args.source, args.out, config_from_args(ReportConfig, args))
    s = report["summary"]
    print(f"frames {s['frames']}, face found in {s['face_share']:.1%}")
    if s["closer_to_source_share"] is not None:
        print(f"identity closer to source than to target on {s['closer_to_source_share']:.1%} of frames")
    for key in ("pose_error", "mouth_error", "eyes_error", "gaze_error", "seam_score", "seam_step", "ssim"):
        if s[key]:
            print(f"{key:12s} mean {s[key]['mean']:.3f}  max {s[key]['max']:.3f}")
    if s["residual_flicker"] is not None:
        print(f"residual flicker {s['residual_flicker']:.3f} (0 = moves exactly as the target does)")
    if s["occluder_untouched"] is not None:
        print(f"occluders left untouched {s['occluder_untouched']:.1%} of their pixels "
              f"({s['occluder_frames']} frames with hands or labelled occluders over the face)")
    print(f"report: {page}")
    return 0
