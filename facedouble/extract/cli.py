"""`facedouble extract INPUT OUTPUT_DIR`."""

from __future__ import annotations

import argparse

from facedouble.config import load_toml
from facedouble.extract.detectors import DETECTORS
from facedouble.extract.facetypes import FACE_TYPES
from facedouble.extract.landmarks import LANDMARKERS
from facedouble.extract.pipeline import REPORT_FILE, ExtractConfig, extract


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `extract` command."""
    p = subparsers.add_parser(
        "extract", help="video or image folder -> aligned faces with landmarks (a faceset)",
        description="Detect, track and align every face of a video (any FFmpeg-readable file) or an image "
        "folder. Each face is written as an image with its metadata (landmarks, transform, source frame, "
        "identity embedding) embedded. Re-running the same command resumes an interrupted run.")
    p.add_argument("input", help="video file or folder of images")
    p.add_argument("output", help="faceset folder to create or resume")
    p.add_argument("--config", help="TOML file with extract settings (flags override it)")
    p.add_argument("--face-type", choices=list(FACE_TYPES), help="crop coverage (default full)")
    p.add_argument("--size", type=int, help="aligned face size in pixels (default 256)")
    p.add_argument("--detector", choices=list(DETECTORS), help="face detector (default retinaface)")
    p.add_argument("--landmarks", choices=list(LANDMARKERS), help="landmark model (default mediapipe)")
    p.add_argument("--format", dest="image_format", choices=["png", "jpg"], help="face image format (default png)")
    p.add_argument("--jpeg-quality", type=int, help="JPEG quality (default 95)")
    p.add_argument("--every-nth", type=int, help="analyse every Nth frame (default 1)")
    p.add_argument("--detect-every", type=int, help="run the detector at least every N frames (default 8)")
    p.add_argument("--max-gap", type=int, help="fill up to N missed frames inside a track (default 5)")
    p.add_argument("--smooth", type=float, help="landmark smoothing sigma in frames, 0 = off (default 0)")
    p.add_argument("--embed-every", type=int, help="identity embedding on every Nth face of a track (default 25)")
    p.add_argument("--reference", help="image or faceset of the wanted person: other faces are skipped")
    p.add_argument("--reference-threshold", type=float, help="max identity distance to the reference (0.6)")
    p.add_argument("--debug", action="store_true", default=None, help="also write frames with landmarks to _debug/")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None, help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run extraction and print the run report."""
    keys = [f.name for f in ExtractConfig.__dataclass_fields__.values()]
    cfg = load_toml(ExtractConfig, args.config, {k: getattr(args, k, None) for k in keys})
    report = extract(args.input, args.output, cfg)
    print(f"frames read        {report.frames_read}")
    print(f"frames analysed    {report.frames_analysed}")
    print(f"faces written      {report.faces_written} (interpolated {report.faces_interpolated}, "
          f"already there {report.faces_skipped_existing}, other identity {report.faces_rejected_reference})")
    print(f"shot cuts          {report.shot_cuts}")
    print(f"tracks             {len(report.tracks)}: " + ", ".join(f"#{t} {n} faces" for t, n in report.tracks.items()))
    missing = report.frames_without_face
    print(f"frames without face {len(missing)}" + (f": {_ranges(missing)}" if missing else ""))
    print(f"report             {args.output}/{REPORT_FILE}")
    return 0


def _ranges(values: list[int]) -> str:
    """'1-3, 7' style list."""
    out, start = [], None
    for i, v in enumerate(values):
        start = v if start is None else start
        if i + 1 == len(values) or values[i + 1] != v + 1:
            out.append(f"{start}-{v}" if start != v else f"{v}")
            start = None
    return ", ".join(out)
