"""`facedouble merge`: render the trained face into every frame of the target clip."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from facedouble.config import load_toml, to_dict
from facedouble.errors import FacedoubleError
from facedouble.merge.blend import BLEND_MODES
from facedouble.merge.colour import COLOUR_TRANSFERS
from facedouble.merge.masks import MASK_MODES
from facedouble.train.precision import CONV_ALGOS, PRECISIONS

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `merge` command."""
    p = subparsers.add_parser(
        "merge", help="model + target faceset -> rendered video / PNG sequence",
        description="Replace the target's faces with the model's, frame by frame: crop with the target faceset's "
        "(temporally smoothed) transforms, swap in batches, mask, match colour, blend back. OUT ending in "
        ".mp4/.mov/.mkv gives an H.264 video with the target's frame timing and audio; any other OUT is a PNG "
        "folder. Re-running the same command resumes. Per-frame settings come from --overrides.")
    p.add_argument("--model", help="trained model folder")
    p.add_argument("--target", help="target faceset folder (from `facedouble extract`), or the target clip "
                   "(extracted into OUT's work folder first unless --faceset names its faceset)")
    p.add_argument("--faceset", help="target faceset folder when --target is the clip")
    p.add_argument("--clip", help="target clip, when the faceset's recorded source path has moved")
    p.add_argument("--out", required=True, help="output video file (.mp4/.mov/.mkv) or PNG folder; with "
                   "--preview a .png file or folder")
    p.add_argument("--png-dir", help="also write the frames as PNGs here")
    p.add_argument("--matte-dir", help="write 16-bit alpha matte PNGs here")
    p.add_argument("--transforms", help="write per-frame face transforms (JSON) here, for compositing")
    p.add_argument("--config", help="TOML file with merge settings (flags override it)")
    p.add_argument("--overrides", help="TOML/JSON sidecar with settings by frame range")
    p.add_argument("--mask", choices=MASK_MODES, help="mask (default hull*learned)")
    p.add_argument("--erode", type=float, help="erode mask by %% of face size, negative dilates (default 0)")
    p.add_argument("--blur", type=float, help="feather mask by %% of face size (default 4)")
    p.add_argument("--colour", "--color", dest="colour", choices=list(COLOUR_TRANSFERS),
                   help="colour transfer (default rct)")
    p.add_argument("--blend", choices=BLEND_MODES, help="alpha (feathered) or poisson (default alpha)")
    p.add_argument("--sharpen", type=float, help="unsharp-mask amount, 0 = off (default 0)")
    p.add_argument("--scale", type=float, help="face scale about its centre (default 1)")
    p.add_argument("--smooth", type=float, help="temporal smoothing sigma in frames, 0 = off (default 1)")
    p.add_argument("--batch", type=int, help="frames per model batch (default 16)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="model arithmetic: auto = bf16 where the hardware does it natively (CUDA, AVX-512 "
                   "BF16/AMX CPUs; under 1/255 from fp32, about 2x faster), else fp32 (default auto)")
    p.add_argument("--conv", dest="conv_algo", choices=CONV_ALGOS, default="auto",
                   help="how the model's convs run: auto = Winograd F(4x4,3x3) for the wide 3x3 convs on a CPU "
                   "in fp32 (about 1.5x faster, within 1e-5 of direct), else the library's own kernels; direct; "
                   "winograd = every 3x3 conv, fp32 only (default auto)")
    p.add_argument("--workers", type=int, help="compositing threads (default 2)")
    p.add_argument("--segment-frames", dest="segment_frames", type=int,
                   help="frames per resumable segment (default 50)")
    p.add_argument("--crf", type=int, help="H.264 quality, lower is better (default 18)")
    p.add_argument("--preset", help="x264 preset (default veryfast)")
    p.add_argument("--preview", type=int, metavar="FRAME", help="render only frame FRAME to a PNG, fast")
    p.add_argument("--shard", help="render part i of n (e.g. 2/4) into OUT's work folder; then run --concat")
    p.add_argument("--concat", action="store_true", help="join the shards' segments into OUT (no model needed)")
    p.add_argument("--fresh", action="store_true", help="discard an earlier, unfinished run's work folder")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress lines")
    t = p.add_argument_group("provenance (always on: guard, watermark, render record, C2PA signature)")
    t.add_argument("--workspace", help="workspace with consent records and certs/ (default $FACEDOUBLE_WORKSPACE "
                   "or ./facedouble-workspace)")
    t.add_argument("--cert", help="C2PA signing certificate chain (PEM); default WORKSPACE/certs/signer.pem")
    t.add_argument("--key", help="its private key (PEM); default WORKSPACE/certs/signer.key")
    t.add_argument("--label", help='visible label burnt into every frame, e.g. "SYNTHETIC"')
    p.set_defaults(func=run)


def _outputs(args: argparse.Namespace):  # noqa: ANN202 - Outputs, imported lazily
    from facedouble.merge.pipeline import Outputs

    out = Path(args.out)
    video = out if out.suffix.lower() in VIDEO_SUFFIXES else None
    png = Path(args.png_dir) if args.png_dir else (None if video else out)
    return Outputs(video=video, png_dir=png, matte_dir=Path(args.matte_dir) if args.matte_dir else None,
                   transforms=Path(args.transforms) if args.transforms else None)


def _target(args: argparse.Namespace, model, outputs) -> tuple[Path, str | None]:  # noqa: ANN001
    """(faceset folder, clip or None) from --target/--faceset/--clip; extracts a bare clip first."""
    if not args.target:
        raise FacedoubleError("--target is required (the target faceset folder or clip)")
    target = Path(args.target)
    if target.is_dir():
        return target, args.clip
    if not target.exists():
        raise FacedoubleError(f"target not found: {target}")
    if args.faceset:
        return Path(args.faceset), args.clip or str(target)
    from facedouble.extract.pipeline import ExtractConfig, extract

    # Resumable like the render itself: a re-run skips the frames already extracted.
    faceset = outputs.work_dir() / "target-faceset"
    print(f"extracting the target's faces into {faceset}")
    extract(target, faceset, ExtractConfig(face_type=model.face_type, size=int(model.resolution),
                                           progress=args.progress))
    return faceset, str(target)


def run(args: argparse.Namespace) -> int:
    """Run merge, preview or concat and print a summary."""
    from facedouble.merge import pipeline
    from facedouble.merge.model import load_model
    from facedouble.merge.overrides import load_overrides
    from facedouble.merge.shard import parse_shard
    from facedouble.merge.writers import write_png
    from facedouble.trust.render import check_consent, render_preview

    if args.concat:
        outputs = _outputs(args)
        plan_file = outputs.work_dir() / pipeline.PLAN_FILE
        state = json.loads(plan_file.read_text(encoding="utf-8")) if plan_file.exists() else None
        if state:  # the shards were rendered earlier: consent withdrawn since then stops the join too
            from facedouble.trust.consent import check_model_consent

            check_model_consent(state.get("consent"), Path(args.workspace) if args.workspace else None)
        provenance = _provenance(args, state["model_hash"], Path(state["clip"]), state["settings"],
                                 state.get("fps") or 25.0, state.get("frame_count")) if state else None
        result = pipeline.finalize(outputs, provenance.hooks() if provenance else None)
        _summary(result)
        return 0
    if not args.model:
        raise FacedoubleError("--model is required")
    keys = [f for f in pipeline.MergeConfig.__dataclass_fields__]
    config = load_toml(pipeline.MergeConfig, args.config, {k: getattr(args, k, None) for k in keys}).validate()
    rules = load_overrides(args.overrides)
    model = load_model(args.model, precision=args.precision, conv_algo=args.conv_algo)
    # Before anything is extracted or rendered, previews included: a preview is a swap too.
    # Re-checked against the workspace's record now: an expired or withdrawn consent renders nothing.
    check_consent(model, args.workspace)
    faceset, clip = _target(args, model, _outputs(args))
    if args.preview is not None:
        out = Path(args.out)
        png = out if out.suffix.lower() == ".png" else out / f"preview_{args.preview:06d}.png"
        image = render_preview(model, faceset, args.preview, workspace=args.workspace, config=config, rules=rules,
                               clip=clip, label=args.label)
        write_png(png, image)
        print(f"preview            {png} (watermarked, labelled)")
        return 0
    shard = parse_shard(args.shard) if args.shard else (1, 1)
    plan = pipeline.load_plan(model, faceset, config, clip)
    provenance = _provenance(args, model.model_hash, plan.clip, to_dict(config), float(plan.fps), plan.frame_count)
    result = pipeline.merge(model, faceset, _outputs(args), config, rules, clip, shard, hooks=provenance.hooks(),
                            fresh=args.fresh, progress=args.progress, plan=plan)
    if result is None:
        print(f"shard {shard[0]}/{shard[1]} done; when every shard is, run: facedouble merge --concat --out {args.out}")
        return 0
    _summary(result)
    return 0


def _provenance(args: argparse.Namespace, model_hash: str, clip: Path, settings: dict, fps: float,
                frame_count: int | None):  # noqa: ANN202 - RenderProvenance, imported lazily
    """Guard, watermark, label, record and signature for this render (the same for every shard)."""
    from facedouble.trust.consent import default_workspace
    from facedouble.trust.render import RenderProvenance, find_signer

    workspace = Path(args.workspace) if args.workspace else default_workspace()
    cert, key = find_signer(workspace, args.cert, args.key)
    return RenderProvenance.for_render(model_hash=model_hash, clip=clip, settings=settings, fps=fps,
                                       frame_count=frame_count, cert=cert, key=key, label=args.label)


def _summary(result) -> None:  # noqa: ANN001 - MergeResult
    fps = result.frames / result.seconds if result.seconds else None
    print(f"frames             {result.frames} ({result.frames_with_faces} with faces)"
          + (f", {fps:.1f} frames/s" if fps else ""))
    flicker = f"{result.flicker:.3f}" if result.flicker is not None else "n/a (no consecutive face frames)"
    print(f"flicker            {flicker} (face-region frame-to-frame change / the target's; 1.0 = as stable)")
    for name, path in (("video", result.outputs.video), ("png", result.outputs.png_dir),
                       ("mattes", result.outputs.matte_dir), ("transforms", result.outputs.transforms)):
        if path is not None:
            print(f"{name:<18} {path}")
