"""Merge benchmark: frames/s at 360x288 (native GRID) and 1280x720 (upscaled GRID), 128 px model, MP4 out.

Models: `shift` (costs nothing: measures merge's own work - decode, crop, masks, rct colour, blend, x264)
and the real 128 px presets `saehd-liae-ud-128` (DeepFaceLab's default SAEHD) and `saehd-df-128`, built
with random weights, saved as a checkpoint and loaded through `load_model` exactly as `facedouble merge`
does (precision auto: bf16 autocast where the CPU has native bf16, else fp32; the table says which).
Real models run with `--conv auto` (Winograd for the wide 3x3 convs on CPU in fp32) and `direct` for
comparison. One more run times saehd-liae-ud-128 with the provenance hooks `facedouble merge` always adds
(explicit-content guard, watermark, render record, C2PA signature): the speed a user sees.
The other runs ("model-only") pass the tests' no-op hook (merge refuses to render unmarked otherwise); the
provenance run also prints where its time goes (guard, watermark, record + C2PA, per frame; inside the watermark
its detector and landmarker, which run on key frames only, and the mark itself) and its share of model-only speed.
The header names the mask, colour transfer and batch merge really used (MergeConfig's defaults, reported by the child).
Facesets come from `facedouble extract` (not timed). Each run is a fresh process.
A second table gives the flicker figure (render's frame-to-frame change in the face region / the
target's) with a static-face model - the same real GRID face (from pwij3p) pasted on every frame, so
any crop jitter shows one to one - with temporal smoothing off (as DeepFaceLab) and on.
Usage: python -m bench.merge [--clips N] [--threads T] [--model TRAINED_MODEL_DIR] [--convs auto,direct]
                             [--key-interval N]
`--key-interval N` sets facedouble.trust.watermark.KEY_INTERVAL in the merge processes (bench only: to compare
the watermark's key-frame spacing; 1 = detector + landmarks on every frame).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import grid_clips, machine, upscaled_clip

RUN = """
import json, resource, sys, time
from facedouble.runtime import tune_process
tune_process()  # as the CLI does before torch loads
import numpy as np
from pathlib import Path
from facedouble.merge.pipeline import MergeConfig, Outputs, merge
from facedouble.merge.model import load_model
from tests.standin import ShiftSwapper
import torch
torch.set_num_threads(int(sys.argv[4]))
kind, conv = sys.argv[3], sys.argv[5]
if sys.argv[7]:  # --key-interval: the watermark's key-frame spacing for this run (bench only)
    from facedouble.trust import watermark
    watermark.KEY_INTERVAL = int(sys.argv[7])
if kind.startswith("model:"):
    model = load_model(kind[6:], conv_algo=conv)
elif kind == "shift":
    model = ShiftSwapper(128)
else:
    from bench.merge import random_model
    model = load_model(random_model(kind, Path(sys.argv[2]) / "model"), conv_algo=conv)
res = int(model.resolution)
faces = np.zeros((16, res, res, 3), np.uint8)  # one merge batch
model.swap(faces)  # warm-up (oneDNN kernels)
t = time.perf_counter()
for _ in range(3):
    model.swap(faces)
model_ms = (time.perf_counter() - t) / (3 * len(faces)) * 1000
gflop = 0.0
if hasattr(model, "model"):  # a real network: its conv + matmul work per face as direct convolution would do it
    from torch.utils.flop_counter import FlopCounterMode
    from facedouble.train.models.presets import build_model
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        build_model(model.config).swap(torch.zeros(1, 3, res, res))
    gflop = counter.get_total_flops() / 1e9
out = Path(sys.argv[2])
config = MergeConfig(workers=2)  # the defaults: batch 16
hooks, hook_s, hook_n = None, {}, {}
if sys.argv[6].startswith("provenance"):  # what `facedouble merge` adds: guard, watermark, record, C2PA signature
    from facedouble.config import to_dict
    from facedouble.merge.pipeline import load_plan
    from facedouble.trust.c2pa_sign import init_test_ca
    from facedouble.trust.render import RenderProvenance
    init_test_ca(out / "certs")
    plan = load_plan(model, sys.argv[1], config, None)
    prov = RenderProvenance.for_render(model_hash=model.model_hash, clip=plan.clip, settings=to_dict(config),
                                       fps=float(plan.fps), frame_count=plan.frame_count,
                                       cert=out / "certs" / "signer.pem", key=out / "certs" / "signer.key")
    hooks = prov.hooks()
    if sys.argv[6] == "provenance-in-order":  # bench only: the mark's alignment in the sink thread, as before
        hooks.prepare.clear()
    import threading
    lock = threading.Lock()
    def timed(name, fn):  # seconds summed over calls (and over the worker threads that make them)
        def call(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                with lock:
                    hook_s[name] = hook_s.get(name, 0.0) + time.perf_counter() - t0
                    hook_n[name] = hook_n.get(name, 0) + 1
        return call
    prov.guard.check = timed("guard", prov.guard.check)
    prov.watermarker.embed_faces = timed("watermark", prov.watermarker.embed_faces)
    # inside the watermark: the detector and landmarker (key frames only), the mark itself (every frame)
    from facedouble.trust import watermark as wm
    from facedouble.extract.landmarks import FaceMeshLandmarker
    detector = wm._detector()
    detector.detect = timed("watermark: detector", detector.detect)
    # one landmarker per thread (the compositing threads align the faces): timed on the class
    FaceMeshLandmarker.from_points5 = timed("watermark: landmarks", FaceMeshLandmarker.from_points5)
    prov.watermarker._embed = timed("watermark: mark (luma, lattice, pattern warp, add)", prov.watermarker._embed)
    hooks.post_composite[:] = [timed("post_composite (guard + watermark + label)", h) for h in hooks.post_composite]
    hooks.prepare[:] = [timed("prepare (the mark's alignment, compositing threads)", h) for h in hooks.prepare]
    hooks.metadata[:] = [timed("metadata (record)", h) for h in hooks.metadata]
    hooks.finalize[:] = [timed("finalize (record + C2PA)", h) for h in hooks.finalize]
t = time.perf_counter()
if hooks is None:  # model-only: merge refuses to render unmarked, so the bench passes the tests' no-op hook
    from tests.standin import unmarked_hooks
    hooks = unmarked_hooks()
result = merge(model, sys.argv[1], Outputs(video=out / "render.mp4"), config, hooks=hooks, progress=False)
seconds = time.perf_counter() - t
print(json.dumps({"frames": result.frames, "seconds": seconds, "model_ms": model_ms, "gflop": gflop,
                  "flicker": result.flicker,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "precision": "bf16" if getattr(model, "bf16", False) else "fp32",
                  "winograd": getattr(model, "winograd", 0), "mask": config.mask, "colour": config.colour,
                  "batch": config.batch, "workers": config.workers, "hook_s": hook_s, "hook_n": hook_n}))
"""
PRESETS = ("saehd-liae-ud-128", "saehd-df-128")


def random_model(preset_name: str, folder: Path) -> Path:
    """A model folder holding `preset_name` with its initial (random) weights: costs what a trained one does."""
    import torch

    from facedouble.config import to_dict
    from facedouble.nn import checkpoint as ck
    from facedouble.train.models.presets import build_model, preset

    torch.manual_seed(0)
    cfg = preset(preset_name)
    state = {"model": to_dict(cfg), "iteration": 0, "consent": {"name": "bench", "record_hash": "0" * 64}}
    ck.save_checkpoint(folder, build_model(cfg).state_dict(), {}, state)
    return folder


def run_once(faceset: Path, out: Path, kind: str, threads: int, conv: str = "auto", provenance: bool | str = False,
             key_interval: int | None = None) -> dict:
    """Merge in a fresh interpreter (with the CLI's provenance hooks when asked, or "in-order": with the mark's
    alignment in the sink thread instead of the compositing threads; `key_interval`: the watermark's
    KEY_INTERVAL there, None = its default); returns its figures."""
    mode = "plain" if not provenance else "provenance-in-order" if provenance == "in-order" else "provenance"
    proc = subprocess.run([sys.executable, "-c", RUN, str(faceset), str(out), kind, str(threads), conv,
                           mode, str(key_interval or "")], capture_output=True, text=True)
    if proc.returncode != 0:  # the child's own last lines say why, not the parent's traceback
        raise SystemExit(f"merge of {kind} ({conv}, {mode}) failed:\n"
                         + "\n".join(proc.stderr.strip().splitlines()[-6:]))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def flicker_table(tmp_path: Path, stems: tuple[str, ...] = ("bbaf2n", "lbbc2a", "sbia1a")) -> list[str]:
    """Markdown rows: flicker figure per clip for smoothing sigma 0 / 1 / 2 frames."""
    from bench.common import GRID_DIR
    from facedouble.extract.pipeline import ExtractConfig, extract
    from facedouble.faceset import Faceset
    from facedouble.merge.pipeline import MergeConfig, Outputs
    from tests.standin import StaticFaceSwapper
    from tests.standin import merge_unmarked as merge

    src = tmp_path / "src"
    extract(GRID_DIR / "pwij3p.mpg", src, ExtractConfig(size=128, progress=False))
    faces = Faceset(src)
    model = StaticFaceSwapper(faces.load(faces.paths()[30])[0])
    rows = []
    for stem in stems:
        target = tmp_path / f"target_{stem}"
        extract(GRID_DIR / f"{stem}.mpg", target, ExtractConfig(size=64, progress=False))
        figures = [merge(model, target, Outputs(png_dir=tmp_path / f"flk_{stem}_{sigma}"),
                         MergeConfig(transform_smooth=sigma), progress=False).flicker for sigma in (0.0, 1.0, 2.0)]
        rows.append(f"| {stem} | " + " | ".join(f"{f:.3f}" for f in figures) + " |")
    return rows


def _default_key_interval() -> int:
    from facedouble.trust import watermark

    return watermark.KEY_INTERVAL


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def main() -> None:
    """Print Markdown tables of merge speed and flicker."""
    from facedouble.extract.pipeline import ExtractConfig, extract

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=2, help="how many GRID clips to join (default 2)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--model", help="also time a trained model folder (facedouble train output)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs per row; the row shows the run with the median frames/s (default 1)")
    parser.add_argument("--only", help="time only this model (shift, a preset name or model:DIR) and skip flicker")
    parser.add_argument("--convs", default="auto,direct",
                        help="conv algorithms to time the real models with (default auto,direct: auto is what "
                        "merge uses - Winograd for wide 3x3 convs on CPU in fp32 - and direct is the comparison)")
    parser.add_argument("--key-interval", type=int, default=None,
                        help="bench only: the watermark's KEY_INTERVAL in the provenance run (default: the code's)")
    parser.add_argument("--in-order-too", action="store_true",
                        help="bench only: also time the provenance run with the mark's alignment in the sink "
                             "thread (before it moved to the compositing threads)")
    args = parser.parse_args()
    if args.key_interval is not None and args.key_interval < 1:
        parser.error("--key-interval must be >= 1")
    clips = grid_clips()[: args.clips]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        for label, size in (("360x288", (360, 288)), ("1280x720", (1280, 720))):
            joined = upscaled_clip(clips, tmp_path / f"grid_{size[1]}p.mp4", size)
            faceset = tmp_path / f"faces_{size[1]}"
            extract(joined, faceset, ExtractConfig(size=64, progress=False))
            kinds = ["shift", *PRESETS] + ([f"model:{args.model}"] if args.model else [])
            if args.only:
                kinds = [args.only]
            runs = [(kind, conv, False) for kind in kinds
                    for conv in (["auto"] if kind == "shift" else args.convs.split(","))]
            if args.only != "shift":  # one real model again with the hooks `facedouble merge` always adds
                runs.append((args.only or PRESETS[0], "auto", True))
                if args.in_order_too:
                    runs.append((args.only or PRESETS[0], "auto", "in-order"))
            for kind, conv, provenance in runs:
                repeats = []
                for _ in range(args.repeats):
                    out = tmp_path / f"out_{size[1]}_{len(rows)}_{len(repeats)}"
                    out.mkdir()
                    repeats.append(run_once(faceset, out, kind, args.threads, conv, provenance, args.key_interval))
                repeats.sort(key=lambda f: f["frames"] / f["seconds"])
                figures = repeats[len(repeats) // 2]
                figures["all_fps"] = [round(f["frames"] / f["seconds"], 1) for f in repeats]
                rows.append((label, kind + (" + provenance (alignment in order)" if provenance == "in-order"
                                            else " + provenance" if provenance else ""), figures))
        flicker_rows = [] if args.only else flicker_table(tmp_path)
    first = rows[0][2]  # the settings merge really used (MergeConfig defaults), as the child reported them
    print(f"Merge, {machine()}, {time.strftime('%Y-%m-%d %H:%M')}, load average "
          + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + f" at the end, {len(clips)} GRID clips joined, "
          f"MP4 out (x264 veryfast crf 18), {first['colour']} colour, {first['mask']} mask, batch {first['batch']}, "
          f"{first['workers']} workers, watermark KEY_INTERVAL {args.key_interval or _default_key_interval()}")
    print("GFLOP/face is the direct-convolution work; model GFLOP/s divides it by the time, so Winograd convs "
          "(4x fewer multiplies) can pass the CPU's fp32 ceiling")
    print("| footage | model | precision | convs | frames | frames/s (median; all runs) | model ms/face | GFLOP/face "
          "| model GFLOP/s | flicker | peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for label, kind, f in rows:
        rate = f"{f['gflop'] / f['model_ms'] * 1000:.0f}" if f["gflop"] else "-"
        convs = "-" if kind == "shift" else f"{f['winograd']} Winograd" if f["winograd"] else "direct"
        print(f"| {label} | {kind} | {f['precision']} | {convs} | {f['frames']} | {f['frames'] / f['seconds']:.1f}"
              f"{'' if len(f['all_fps']) == 1 else ' (' + ', '.join(map(str, f['all_fps'])) + ')'} | "
              f"{f['model_ms']:.1f} | {f['gflop']:.1f} | {rate} | {_figure(f['flicker'])} | {f['peak_mib']:.0f} |")
    for label, kind, f in rows:  # where the provenance time goes (summed over threads, per frame)
        if f.get("hook_s"):
            calls = f.get("hook_n", {})
            print(f"{label} {kind}: " + ", ".join(
                f"{k} {v / f['frames'] * 1000:.1f} ms/frame"
                + (f" ({calls[k]} calls)" if k.startswith("watermark:") and k in calls else "")
                for k, v in f["hook_s"].items()))
            plain = [g for lab, kin, g in rows if lab == label and kin == kind.split(" + provenance")[0]]
            if plain:  # the goal of issue 19: full provenance at >= 90 % of the model-only speed
                print(f"{label} {kind}: {f['frames'] / f['seconds'] / (plain[0]['frames'] / plain[0]['seconds']):.0%}"
                      " of the model-only frames/s (medians)")
    if not flicker_rows:
        return
    print()
    print("Flicker figure, static-face model (1.0 = face region as stable as the target; lower = steadier)")
    print("| clip | smoothing off (sigma 0) | sigma 1 (default) | sigma 2 |")
    print("|---|---|---|---|")
    print("\n".join(flicker_rows))


if __name__ == "__main__":
    main()
