"""Does training on several dst identities help the swap's expressions? Single-dst vs multi-dst at equal compute.

    python -m bench.multi_dst                                  # tiny preset, 300 iterations x batch 8, seed 0
    python -m bench.multi_dst --iters 200                      # the README figure (about 16 CPU-minutes)
    python -m bench.multi_dst --preset quick96 --iters 200 --seeds 0,1

src = GRID bbaf2n, target = GRID lbbc2a (the last 30 % of its frames held out, never trained on); the
multi-dst model adds two other GRID speakers (lrwp9a, sbia1a) as extra --dst facesets, each with its own
decoder (issue 17 item 5, after Disney/ETH's multi-identity face swapping). Both models start from the same
seed and take the same iterations at the same batch size, so they see the same number of samples: the
multi-dst model shares the dst half of each batch among its three dst sets (`facedouble.train.data.dst_split`),
so the target's own decoder sees a third of what the single-dst model's does.

Each model swaps the held-out target frames through the merge's own steps (plan, crop, swap, composite, default
settings, no provenance marks); the report's landmarker (MediaPipe mesh -> 68 points, started from the plan's
landmarks) reads the render and the target frame, and the report's functions measure them: mouth and eye
expression error (`facedouble.report.metrics.expression_error`, inter-ocular distances), pose error, and the dlib
identity distance to the source (the report's `identity_to_source`). Medians over the held-out frames, then
over seeds. Also the held-out target's dst->dst masked SSIM (`reconstruction_ssim`).

Consent: this benchmark builds `Trainer` directly on the project's own sample footage; the CLI and
`Trainer.create` always run the consent gate.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import GRID_DIR, cpu_flags, machine

SOURCE, TARGET, EXTRAS = "bbaf2n", "lbbc2a", ("lrwp9a", "sbia1a")
HELDOUT_SHARE = 0.3  # of the target's frames (the last ones), never trained on


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def prepare(work: Path, resolution: int) -> dict[str, Any]:
    """Facesets of every clip at the model's resolution (extracted once per `work`) and the target's split."""
    from facedouble.extract.pipeline import ExtractConfig, extract
    from facedouble.faceset import Faceset

    faces: dict[str, Path] = {}
    for stem in (SOURCE, TARGET, *EXTRAS):
        out = work / f"faces_{stem}_{resolution}"
        if not (out / ".complete").exists():
            log(f"extracting {stem}")
            shutil.rmtree(out, ignore_errors=True)
            extract(GRID_DIR / f"{stem}.mpg", out, ExtractConfig(size=resolution, progress=False))
            (out / ".complete").write_text("")
        faces[stem] = out
    fs = Faceset(faces[TARGET])
    frames = sorted({meta.frame_index for _, meta in fs.metas()})
    cut = frames[int(len(frames) * (1 - HELDOUT_SHARE))]
    train_dir = work / f"dst_train_{resolution}"
    if not (train_dir / ".complete").exists():
        shutil.rmtree(train_dir, ignore_errors=True)
        train_dir.mkdir()
        for path, meta in fs.metas():
            if meta.frame_index < cut:
                shutil.copy(path, train_dir / path.name)
        (train_dir / ".complete").write_text("")
    held = [p for p, meta in fs.metas() if meta.frame_index >= cut]
    return {"faces": faces, "dst_train": train_dir, "cut": cut, "held_paths": held}


def train(model_dir: Path, args: argparse.Namespace, data: dict[str, Any], multi: bool, seed: int) -> dict:
    """Train one arm from scratch; its clock record."""
    import dataclasses

    from facedouble.train.models import presets
    from facedouble.train.trainer import TrainConfig, Trainer

    dsts = [data["dst_train"]] + ([data["faces"][e] for e in EXTRAS] if multi else [])
    mcfg = dataclasses.replace(presets.preset(args.preset), dst_count=len(dsts))
    # the preset's optimizer and lr-dropout (DFL's recipe) where this version has them; --lr wins
    recipe = {k: v for k, v in getattr(presets, "train_recipe", dict)(args.preset).items() if k != "lr"}
    tcfg = TrainConfig(**recipe, batch_size=args.batch, lr=args.lr, max_iters=args.iters, seed=seed,
                       threads=args.threads, workers=1, save_every_min=1e9, preview_every_min=1e9, keep_last=1)
    shutil.rmtree(model_dir, ignore_errors=True)
    load0, wall0, cpu0 = os.getloadavg()[0], time.monotonic(), time.process_time()
    tr = Trainer(model_dir, mcfg, tcfg, data["faces"][SOURCE], dsts, consent=None)
    summary = tr.run()
    return {"iterations": summary["iteration"], "wall_s": round(time.monotonic() - wall0, 1),
            "cpu_s": round(time.process_time() - cpu0, 1), "load1": round((load0 + os.getloadavg()[0]) / 2, 2),
            "bf16": tr.bf16, "optimizer": tcfg.optimizer, "split": tr.dst_split or [args.batch],
            "loss": summary["loss"]}


class Evaluator:
    """The held-out target frames, their landmarks and the source reference, computed once."""

    def __init__(self, data: dict[str, Any]):
        from facedouble.extract.identity import IdentityEmbedder
        from facedouble.extract.landmarks import get_landmarker
        from facedouble.extract.pipeline import reference_embedding

        self.data = data
        self.clip = GRID_DIR / f"{TARGET}.mpg"
        self.landmarker = get_landmarker()
        self.embedder = IdentityEmbedder()
        self.src_ref = reference_embedding(GRID_DIR / f"{SOURCE}.mpg", self.embedder)
        self.target_marks: dict[int, np.ndarray] = {}

    def measure(self, model_dir: Path, resolution: int, face_type: str) -> dict[str, float]:
        """Median metrics of `model_dir`'s swap over the held-out target frames."""
        import torch

        from facedouble.io.video import open_source
        from facedouble.merge.pipeline import MergeConfig, composite_frame, crop_faces, load_plan
        from facedouble.report.metrics import expression_error, pose_error
        from facedouble.train.data import FaceBank
        from facedouble.train.preview import reconstruction_ssim
        from facedouble.train.swapper import load_swapper

        model = load_swapper(model_dir)
        config = MergeConfig()
        plan = load_plan(model, self.data["faces"][TARGET], config, self.clip)
        settings, res = config.face_settings(), plan.resolution
        rows = []
        for frame in open_source(self.clip):
            jobs = plan.faces.get(frame.index) or []
            if frame.index < self.data["cut"] or not jobs:
                continue
            crops = crop_faces(frame.image, jobs[:1], res)
            rgb, learned = model.swap(np.stack(crops))
            render = composite_frame(frame, jobs[:1], crops, rgb, learned, settings, res).image
            start = jobs[0].landmarks @ jobs[0].to_frame[:, :2].T + jobs[0].to_frame[:, 2]
            if frame.index not in self.target_marks:
                found = self.landmarker.from_landmarks(frame.image, start)
                self.target_marks[frame.index] = None if found is None else found.landmarks
            target = self.target_marks[frame.index]
            found = self.landmarker.from_landmarks(render, start)
            if target is None or found is None:
                continue
            mouth, eyes = expression_error(found.landmarks, target)
            rows.append({"mouth": mouth, "eyes": eyes, "pose": pose_error(found.landmarks, target),
                         "id_to_source": float(np.linalg.norm(self.embedder.embed(render, found.landmarks)
                                                              - self.src_ref))})
        held = FaceBank(self.data["faces"][TARGET], resolution, face_type, self.data["held_paths"])
        with torch.inference_mode():
            ssim = reconstruction_ssim(model.model, held.images, resolution, side="dst", masks=held.masks)
        out = {k: float(np.median([r[k] for r in rows])) for k in ("mouth", "eyes", "pose", "id_to_source")}
        return {**out, "mouth_mean": float(np.mean([r["mouth"] for r in rows])), "frames": len(rows),
                "ssim_heldout_dst": ssim}


def main(argv: list[str] | None = None) -> None:
    """Train both arms per seed, measure, print a table and write results.json."""
    import torch

    from facedouble.train.models.presets import preset

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-4, help="(the demo's; the default 5e-5 learns little in minutes)")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds; medians over them")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("/tmp/facedouble_multi_dst"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    mcfg = preset(args.preset)
    args.out.mkdir(parents=True, exist_ok=True)
    data = prepare(args.out, mcfg.resolution)
    log(f"{args.preset}, batch {args.batch}, {args.iters} iterations, lr {args.lr:g}, {args.threads} threads; "
        f"{machine()}; {cpu_flags()}; load average {os.getloadavg()[0]:.2f} (shared machine); "
        f"held-out target frames >= {data['cut']}")
    evaluator = Evaluator(data)
    results = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for arm, multi in (("single", False), ("multi", True)):
            model_dir = args.out / f"model_{arm}_{seed}"
            clock = train(model_dir, args, data, multi, seed)
            metrics = evaluator.measure(model_dir, mcfg.resolution, mcfg.face_type)
            results.append({"arm": arm, "seed": seed, **clock, **metrics})
            log(f"{arm} seed {seed}: {json.dumps(results[-1])}")
    (args.out / "results.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                       "machine": machine(), "cpu": cpu_flags(),
                                                       "results": results}, indent=1))
    print("\n| arm | dst sets (target's share of the dst batch) | mouth error | eye error | pose error (deg) | "
          "identity to source | held-out dst SSIM | CPU-s |")
    print("|---|---|---|---|---|---|---|---|")
    for arm in ("single", "multi"):
        rs = [r for r in results if r["arm"] == arm]

        def med(key: str, rs: list = rs) -> float:
            return float(np.median([r[key] for r in rs]))

        split = rs[0]["split"]
        print(f"| {arm} | {len(split)} ({split[0]}/{args.batch}) | {med('mouth'):.4f} | {med('eyes'):.4f} | "
              f"{med('pose'):.2f} | {med('id_to_source'):.3f} | {med('ssim_heldout_dst'):.3f} | "
              f"{sum(r['cpu_s'] for r in rs):.0f} |")


if __name__ == "__main__":
    main()
