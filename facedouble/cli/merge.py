"""`facedouble merge`: render the trained face into every frame of the target clip."""

from __future__ import annotations

import argparse
from pathlib import Path

from facedouble.colour import COLOUR_TRANSFERS
from facedouble.config import (
    StageConfig,
    add_config_args,
    add_workspace_arg,
    config_from_args,
    retire_flag,
    show_defaults,
)
from facedouble.errors import UsageError
from facedouble.io.sequence import add_media_flags
from facedouble.merge.blend import BLEND_MODES
from facedouble.merge.config import DEVICES
from facedouble.merge.masks import MASK_MODES
from facedouble.merge.region import REGIONS
from facedouble.merge.writers import VIDEO_CODECS
from facedouble.nn.precision import CONV_ALGOS, PRECISIONS


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `merge` command."""
    p = subparsers.add_parser(
        "merge", help="model + target faceset -> rendered video / PNG sequence",
        description="Replace the target's faces with the model's, frame by frame: crop with the target faceset's "
        "(temporally smoothed) transforms, swap in batches, mask, match colour, blend back. OUT ending in "
        ".mp4/.mov/.mkv gives a video (--codec: H.264 by default; ProRes/DNxHR in .mov) with the target's frame "
        "timing, timecode and every audio stream; any other OUT is a PNG folder. Re-running the same command "
        "resumes. Per-frame settings come from --overrides.")
    p.add_argument("--model", help="trained model folder")
    p.add_argument("--target", help="target faceset folder (from `facedouble extract`), or the target clip "
                   "(extracted into OUT's work folder first unless --faceset names its faceset)")
    p.add_argument("--faceset", help="target faceset folder when --target is the clip")
    p.add_argument("--clip", help="target clip, when the faceset's recorded source path has moved")
    p.add_argument("--out", required=True, help="output video file (.mp4/.mov/.mkv), numbered image sequence "
                   "(out/shot.%%04d.exr or .####.dpx/.tif/.png: 16-bit, float EXR) or PNG folder; with "
                   "--preview a .png file or folder")
    p.add_argument("--png-dir", help="also write the frames as PNGs here")
    p.add_argument("--matte-dir", help="write 16-bit alpha matte PNGs here")
    p.add_argument("--transforms", help="write per-frame face transforms (JSON) here, for compositing")
    p.add_argument("--patch-dir", help="write a 16-bit RGBA patch per frame (the changed area, matte as alpha) "
                   "and patches.json (placement matrices, OpenCV and Nuke conventions) here, for compositing")
    add_config_args(p, "merge")
    p.add_argument("--overrides", help="TOML/JSON sidecar with settings by frame range")
    add_config_flags(p)
    add_media_flags(p)
    p.add_argument("--preview", type=int, metavar="FRAME", help="render only frame FRAME to a PNG, fast")
    p.add_argument("--shard", help="render part i of n (e.g. 2/4) into OUT's work folder; then run --concat")
    p.add_argument("--concat", action="store_true", help="join the shards' segments into OUT (no model needed)")
    p.add_argument("--fresh", action="store_true", help="discard an earlier, unfinished run's work folder")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    t = p.add_argument_group("provenance (always on: guard, watermark, render record, C2PA signature)")
    add_workspace_arg(t)
    t.add_argument("--cert", help="C2PA signing certificate chain (PEM); default WORKSPACE/certs/signer.pem")
    t.add_argument("--key", help="its private key (PEM); default WORKSPACE/certs/signer.key")
    t.add_argument("--label", help='visible label burnt into every frame, e.g. "SYNTHETIC"')
    p.set_defaults(func=run)


def add_config_flags(p: argparse.ArgumentParser) -> None:
    """The flags of MergeConfig's settings (also used by `facedouble config show merge`)."""
    from facedouble.merge.pipeline import MergeConfig

    p.add_argument("--mask", choices=MASK_MODES, help="mask")
    p.add_argument("--erode", type=float, help="erode mask by %% of face size, negative dilates")
    p.add_argument("--blur", type=float, help="feather mask by %% of face size")
    p.add_argument("--colour", "--color", dest="colour", choices=list(COLOUR_TRANSFERS), help="colour transfer")
    p.add_argument("--blend", choices=BLEND_MODES, help="alpha (feathered) or poisson")
    p.add_argument("--sharpen", type=float, help="unsharp-mask amount, 0 = off")
    p.add_argument("--scale", type=float, help="face scale about its centre")
    p.add_argument("--region", choices=REGIONS, help="what the model replaces: the whole face, or for dubbing only "
                   "the mouth, the lower face or the eyes (the rest of the plate stays untouched)")
    p.add_argument("--keep-from-plate", metavar="PARTS", help="plate parts kept over the swap, blended by the "
                   "mesh's lip and eye contours: none, mouth (the mouth interior), eyes, or mouth,eyes")
    p.add_argument("--edge-match", type=float, help="match the face's shading to the plate's along the mask edge, "
                   "fading out over this %% of the face size inward; 0 = off")
    p.add_argument("--transform-smooth", type=float, metavar="SIGMA",
                   help="temporal smoothing of the face transforms along each track, sigma in frames, 0 = off")
    retire_flag(p, "--smooth", "--transform-smooth", "merge smooths the face transforms; extract's "
                "--landmark-smooth smooths landmarks")
    p.add_argument("--batch", type=int, help="frames per model batch")
    p.add_argument("--precision", choices=PRECISIONS,
                   help="model arithmetic: auto = bf16 where the hardware does it natively (CUDA, AVX-512 "
                   "BF16/AMX CPUs; under 1/255 from fp32, about 2x faster), else fp32")
    p.add_argument("--conv", choices=CONV_ALGOS,
                   help="how the model's convs run: auto = Winograd F(4x4,3x3) for the wide 3x3 convs on a CPU "
                   "in fp32 (about 1.5x faster, within 1e-5 of direct), else the library's own kernels; direct; "
                   "winograd = every 3x3 conv, fp32 only")
    p.add_argument("--workers", type=int, help="compositing threads")
    p.add_argument("--segment-frames", dest="segment_frames", type=int, help="frames per resumable segment")
    p.add_argument("--crf", type=int, help="H.264 quality, lower is better")
    p.add_argument("--x264-preset", choices=MergeConfig.X264_PRESETS, help="x264/x265 speed preset")
    p.add_argument("--codec", choices=list(VIDEO_CODECS),
                   help="video codec: " + "; ".join(f"{c.name} = {c.description}" for c in VIDEO_CODECS.values()))
    p.add_argument("--frames", metavar="A-B", help="render source frames A..B only (0-based, inclusive); output "
                   "frame numbers, timecode and audio follow the source")
    p.add_argument("--handles", type=int, metavar="N", help="also render N frames before A and after B")
    p.add_argument("--device", choices=DEVICES, help="where the model runs: cpu (default), cuda, auto = cuda "
                   "when available")
    retire_flag(p, "--preset", "--x264-preset", "merge's is the x264 speed preset; train's --preset picks the "
                "model preset")
    show_defaults(p, MergeConfig())


def effective(args: argparse.Namespace) -> dict:
    """The merge settings this command line gives (TOML, --set, flags), validated."""
    from facedouble.merge.pipeline import MergeConfig

    return {"": config_from_args(MergeConfig, args)}


CONFIG = StageConfig("merge", add_config_flags, effective, "merge settings (MergeConfig)")


def run(args: argparse.Namespace) -> int:
    """Run merge, preview or concat and print a summary."""
    from facedouble.io.sequence import media_options, options_from_args

    with media_options(options_from_args(args)):  # --fps/--colourspace/--ocio for an image-sequence target
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from facedouble import api
    from facedouble.merge.pipeline import MergeConfig
    from facedouble.merge.shard import parse_shard
    from facedouble.merge.writers import write_png
    from facedouble.progress import TqdmBars

    outs = {"png_dir": args.png_dir, "matte_dir": args.matte_dir, "transforms": args.transforms,
            "patch_dir": args.patch_dir}
    signer = {"workspace": args.workspace, "cert": args.cert, "key": args.key, "label": args.label}
    if args.concat:
        _summary(api.merge_concat(args.out, **signer, **outs))
        return 0
    if not args.model:
        raise UsageError("--model is required")
    if not args.target:
        raise UsageError("--target is required (the target faceset folder or clip)")
    config = config_from_args(MergeConfig, args)
    rules = _load_rules(args.overrides)
    model = api.load_model(args.model, config)
    if args.preview is not None:
        out = Path(args.out)
        png = out if out.suffix.lower() == ".png" else out / f"preview_{args.preview:06d}.png"
        image = api.merge_preview(model, args.target, args.preview, workspace=args.workspace, config=config,
                                  overrides=rules, clip=args.clip, label=args.label, faceset=args.faceset,
                                  work_dir=api.merge_outputs(args.out).work_dir())
        write_png(png, image)
        print(f"preview            {png} (watermarked, labelled)")
        return 0
    shard = parse_shard(args.shard) if args.shard else (1, 1)
    bars = TqdmBars() if args.progress else None
    try:
        result = api.merge_render(model, args.target, args.out, **signer, config=config, overrides=rules,
                                  faceset=args.faceset, clip=args.clip, shard=shard, fresh=args.fresh,
                                  progress=bars, **outs)
    finally:
        if bars is not None:
            bars.close()
    if result is None:
        print(f"shard {shard[0]}/{shard[1]} done; when every shard is, run: facedouble merge --concat --out {args.out}")
        return 0
    _summary(result)
    return 0


def _load_rules(path: str | None) -> list:
    from facedouble.merge.overrides import load_overrides

    return load_overrides(path)


def _summary(result) -> None:  # noqa: ANN001 - MergeResult
    fps = result.frames / result.seconds if result.seconds else None
    print(f"frames             {result.frames} ({result.frames_with_faces} with faces)"
          + (f", {fps:.1f} frames/s" if fps else ""))
    flicker = f"{result.flicker:.3f}" if result.flicker is not None else "n/a (no consecutive face frames)"
    print(f"flicker            {flicker} (face-region frame-to-frame change / the target's; 1.0 = as stable)")
    for name, path in (("video", result.outputs.video), ("png", result.outputs.png_dir),
                       ("mattes", result.outputs.matte_dir), ("transforms", result.outputs.transforms),
                       ("patches", result.outputs.patch_dir), ("sequence", result.outputs.sequence)):
        if path is not None:
            print(f"{name:<18} {path}")
