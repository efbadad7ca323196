"""`facedouble extract INPUT OUTPUT_DIR`."""

from __future__ import annotations

import argparse

from facedouble.config import StageConfig, add_config_args, config_from_args, retire_flag, show_defaults
from facedouble.extract.detectors import DETECTORS, DEVICES
from facedouble.extract.landmarks import LANDMARKERS
from facedouble.extract.pipeline import REPORT_FILE, ExtractConfig
from facedouble.face.types import FACE_TYPES
from facedouble.io.sequence import add_media_flags


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `extract` command."""
    p = subparsers.add_parser(
        "extract", help="video or image folder -> aligned faces with landmarks (a faceset)",
        description="Detect, track and align every face of a video (any FFmpeg-readable file) or an image "
        "folder. Each face is written as an image with its metadata (landmarks, transform, source frame, "
        "identity embedding) embedded. Re-running the same command resumes an interrupted run.")
    p.add_argument("input", help="video file or folder of images")
    p.add_argument("output", help="faceset folder to create or resume")
    add_config_args(p, "extract")
    add_config_flags(p)
    add_media_flags(p)
    p.set_defaults(func=run)


def add_config_flags(p: argparse.ArgumentParser) -> None:
    """The flags of ExtractConfig's settings (also used by `facedouble config show extract`)."""
    p.add_argument("--face-type", choices=list(FACE_TYPES), help="crop coverage")
    p.add_argument("--size", type=int, help="aligned face size in pixels")
    p.add_argument("--detector", choices=list(DETECTORS), help="face detector")
    p.add_argument("--landmarks", choices=list(LANDMARKERS), help="landmark model")
    p.add_argument("--format", dest="image_format", choices=["png", "jpg"], help="face image format")
    p.add_argument("--jpeg-quality", type=int, help="JPEG quality")
    p.add_argument("--every-nth", type=int, help="analyse every Nth frame")
    p.add_argument("--detect-every", type=int, help="run the detector at least every N frames")
    p.add_argument("--max-gap", type=int, help="fill up to N missed frames inside a track")
    p.add_argument("--landmark-smooth", type=float, metavar="SIGMA",
                   help="Gaussian smoothing of the landmarks along each track, sigma in frames, 0 = off")
    retire_flag(p, "--smooth", "--landmark-smooth", "extract smooths landmarks; merge's --transform-smooth "
                "smooths the face transforms")
    p.add_argument("--embed-every", type=int, help="identity embedding on every Nth face of a track")
    p.add_argument("--reference", help="image or faceset of the wanted person: other faces are skipped")
    p.add_argument("--reference-threshold", type=float, help="max identity distance to the reference")
    p.add_argument("--frames", metavar="A-B", help="analyse source frames A..B only (inclusive; a video's count "
                   "from 0, a sequence's are its own, e.g. 1001-1050), as merge's --frames")
    p.add_argument("--handles", type=int, metavar="N", help="also analyse N frames before A and after B")
    p.add_argument("--device", choices=DEVICES, help="where the face detector runs (ONNX Runtime): cpu (default), "
                   "cuda, auto = cuda when available; landmarks and identity stay on the CPU")
    p.add_argument("--debug", action="store_true", default=None, help="also write frames with landmarks to _debug/")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None, help="no progress bars")
    show_defaults(p, ExtractConfig())


def effective(args: argparse.Namespace) -> dict:
    """The extract settings this command line gives (TOML, --set, flags), validated."""
    return {"": config_from_args(ExtractConfig, args)}


CONFIG = StageConfig("extract", add_config_flags, effective, "extract settings (ExtractConfig)")


def run(args: argparse.Namespace) -> int:
    """Run extraction and print the run report."""
    from facedouble import api
    from facedouble.io.sequence import media_options, options_from_args

    with media_options(options_from_args(args)):  # --fps/--colourspace/--ocio for an image-sequence input
        report = api.extract(args.input, args.output, config_from_args(ExtractConfig, args))
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
