"""Quality over time: train a preset on a GRID pair and measure the swap at checkpoints along the way.

    python -m bench.quality --preset quick96 --minutes 120 [--checkpoints 5,10,20,40,80,120] [--out DIR]
                            [--threads 2] [--eyes-mouth-priority] [--extra-dst STEM ...] [--frames N] [--batch 8]

src = GRID id2_vcd_swwp2s, dst = GRID lbbc2a (a different speaker). pwij3p is the same man as the source in
another session (bench.identity.SAME_PERSON): it is never trained on and serves as the held-out source clip.
The last 20 % of the target's faces are held out of training too (held-out dst->dst SSIM); the whole target
clip is merged at each checkpoint. `--extra-dst STEM` (repeatable, a GRID clip stem; DF presets) trains the
multi-identity model of issue 17: each extra clip is one more dst identity with its own decoder, sharing the
dst half of every batch with the target (same samples per iteration); the swap is judged on the target as before.

Training runs first, on the wall clock: at each checkpoint minute the weights are saved as a snapshot
(`snapshots/<minutes>min/`, a loadable model folder) and the save's time is left off the clock. The
training process's CPU-seconds and iteration count are recorded with the wall minutes, and the load average,
because the machine may be shared. Evaluation runs after training, from the snapshots, so it costs no
training minutes: each snapshot merges the target (merge's default settings, composited as `merge` does but
without provenance marks: only the pixels matter here) and `facedouble.report.build.build_report` measures
the render against the target: pose error, mouth and eye expression error, gaze error, seam score and step, residual
flicker, identity distance to the training source and the share of frames closer to it than to the target.
Added here with the report's embedder: the distance to the held-out source clip, and the reference lines
(the held-out clip's own distance to the source = the same person; the target's = no swap). Held-out
reconstruction SSIM is `facedouble.train.preview.reconstruction_ssim` on pwij3p (src->src) and on the held-out
target faces (dst->dst).

Writes into --out: quality.csv, quality.md (table), quality.png (each metric against minutes), strip.png (the
same target frame, the one with the widest-open mouth, at each checkpoint). Re-running with the same --out
skips what is done: training when every snapshot exists, evaluation of checkpoints already measured
(eval/<minutes>min.json). An interrupted training restarts from scratch. Progress goes to stderr.

Consent: like bench.train_quality, this benchmark builds `Trainer` directly on the project's own sample
footage (GRID, recorded for research use under the corpus terms); the CLI and `Trainer.create` always run the
consent gate.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench.common import GRID_DIR, cpu_flags, machine
from bench.identity import SAME_PERSON

SOURCE, HELDOUT = SAME_PERSON  # the same man, two sessions: train on one, hold out the other
TARGET = "lbbc2a"
HOLDOUT_SHARE = 0.2  # of the target's faces, kept out of training
DEFAULT_CHECKPOINTS = (5, 10, 20, 40, 80, 120)

# (column, label, unit/direction) of every measured figure, in table and plot order.
METRICS: list[tuple[str, str, str]] = [
    ("id_to_source", "identity distance to source", "lower better"),
    ("id_to_heldout", "identity distance to held-out source clip", "lower better"),
    ("id_to_target", "identity distance to target", "higher better"),
    ("closer_to_source_share", "frames closer to source than target", "share, higher better"),
    ("closer_to_heldout_share", "frames closer to held-out source than target", "share, higher better"),
    ("pose_error", "pose error", "degrees, lower better"),
    ("mouth_error", "mouth expression error", "inter-ocular, lower better"),
    ("eyes_error", "eye expression error", "inter-ocular, lower better"),
    ("gaze_error", "gaze error", "eye widths, lower better"),
    ("seam_score", "seam score", "1 = as smooth as the plate"),
    ("seam_step", "seam step", "L* units at the swap's edge, lower better"),
    ("residual_flicker", "residual flicker", "0 = moves as the plate"),
    ("ssim_heldout_src", "held-out SSIM src->src", "higher better"),
    ("ssim_heldout_dst", "held-out SSIM dst->dst", "higher better"),
]
EVAL_ONLY = ("eval_only", "plate_parts")  # options that change what is measured, not what was trained
CLOCK = ["minutes", "wall_s", "cpu_s", "iterations", "load1", "loss_src", "loss_dst"]
REFERENCE = ["same_person_ref", "target_to_source"]
COLUMNS = CLOCK + [m[0] for m in METRICS] + REFERENCE


def log(msg: str) -> None:
    """One progress line on stderr."""
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


def parse_checkpoints(text: str | None, minutes: float) -> list[float]:
    """Sorted checkpoint minutes up to `minutes`, always ending at `minutes` itself."""
    values = DEFAULT_CHECKPOINTS if not text else [float(x) for x in text.split(",") if x.strip()]
    if any(not (math.isfinite(v) and v >= 0) for v in values):
        raise SystemExit(f"--checkpoints must be minutes >= 0, got {text!r}")
    return sorted({v for v in values if v < minutes} | {minutes})


def label(minutes: float) -> str:
    """Folder name of a checkpoint: '5min', '0.05min'."""
    return f"{minutes:g}min"


# -- data ----------------------------------------------------------------------------------------------------
def prepare(work: Path, resolution: int, frames: int, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """Decode the first `frames` frames of each clip to a PNG folder (lossless from here on: renders and
    targets are read alike) and extract its faces at the model's resolution; done once per `work`."""
    from facedouble.extract.pipeline import ExtractConfig, extract
    from facedouble.io.video import open_source

    out: dict[str, Any] = {}
    for stem in (SOURCE, HELDOUT, TARGET, *extra):
        clip, faces = work / "clips" / stem, work / "faces" / stem
        if not (clip / ".complete").exists():
            shutil.rmtree(clip, ignore_errors=True)
            clip.mkdir(parents=True)
            for frame in open_source(GRID_DIR / f"{stem}.mpg"):
                if frame.index >= frames:
                    break
                cv2.imwrite(str(clip / f"{frame.index:06d}.png"), cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))
            (clip / ".complete").write_text("")
        if not (faces / ".complete").exists():
            log(f"extracting {stem} ({frames} frames)")
            shutil.rmtree(faces, ignore_errors=True)
            extract(clip, faces, ExtractConfig(size=resolution, progress=False))
            (faces / ".complete").write_text("")
        out[stem] = {"clip": clip, "faces": faces}
    paths = sorted(p for p in out[TARGET]["faces"].glob("*.png"))
    cut = max(1, min(len(paths) - 1, round(len(paths) * (1 - HOLDOUT_SHARE))))
    dst_train = work / "dst_train"
    if not (dst_train / ".complete").exists():
        shutil.rmtree(dst_train, ignore_errors=True)
        dst_train.mkdir()
        for p in paths[:cut]:
            shutil.copy(p, dst_train)
        (dst_train / ".complete").write_text("")
    out["dst_train"], out["dst_heldout"] = dst_train, paths[cut:]
    return out


# -- training ------------------------------------------------------------------------------------------------
def train(args: argparse.Namespace, out: Path, data: dict[str, Any], checkpoints: list[float]) -> list[dict]:
    """Train on the wall clock, snapshot at each checkpoint (save time off the clock); the clock records."""
    import dataclasses

    from facedouble.io.atomic import atomic_write_json
    from facedouble.nn import checkpoint as ck
    from facedouble.train.models.presets import preset
    from facedouble.train.trainer import TrainConfig, Trainer

    dsts = [data["dst_train"], *(data[stem]["faces"] for stem in args.extra_dst)]
    mcfg = dataclasses.replace(preset(args.preset), dst_count=len(dsts))
    tcfg = TrainConfig(batch_size=args.batch, eyes_mouth_prio=args.eyes_mouth_priority, threads=args.threads,
                       max_minutes=args.minutes, save_every_min=1e9, preview_every_min=1e9, keep_last=1,
                       seed=args.seed)
    model_dir = out / "model"
    # an interrupted run restarts: its clock cannot be resumed; what an earlier training measured is stale
    for stale in (model_dir, out / "snapshots", out / "eval", out / "renders"):
        shutil.rmtree(stale, ignore_errors=True)
    (out / "progress.json").unlink(missing_ok=True)
    tr = Trainer(model_dir, mcfg, tcfg, data[SOURCE]["faces"], dsts, consent=None)
    extra = f" + extra dst {', '.join(args.extra_dst)}" if args.extra_dst else ""
    log(f"training {args.preset} ({len(tr.src_bank)} src / {len(tr.dst_bank)} dst faces{extra}, batch {args.batch}, "
        f"{args.threads} threads, eyes-mouth priority {'on' if args.eyes_mouth_priority else 'off'}, "
        f"{'bf16' if tr.bf16 else 'fp32'}) for {args.minutes:g} min; checkpoints {checkpoints}; "
        f"load average {os.getloadavg()[0]:.2f}")
    records: list[dict] = []
    tr.model.train()
    start, cpu_start = time.monotonic(), time.process_time()
    paused = paused_cpu = 0.0  # snapshot saves, left off both clocks
    last_print = start
    loss = (math.nan, math.nan)
    try:
        for minutes in checkpoints:
            while time.monotonic() - start - paused < minutes * 60:
                loss = tr.step(tr.source.get(tr.iteration))
                tr.iteration += 1
                tr.losses.add(tr.iteration, *loss)
                if time.monotonic() - last_print >= 60:
                    last_print = time.monotonic()
                    log(f"  {(last_print - start - paused) / 60:.1f} min, iteration {tr.iteration}, "
                        f"loss src {loss[0]:.4f} dst {loss[1]:.4f}, load average {os.getloadavg()[0]:.2f}")
            wall, cpu = time.monotonic() - start - paused, time.process_time() - cpu_start - paused_cpu
            t0, c0 = time.monotonic(), time.process_time()
            snap = out / "snapshots" / label(minutes)
            shutil.rmtree(snap, ignore_errors=True)
            ck.save_checkpoint(snap, tr.model.state_dict(), {}, tr.state(), keep=1)
            record = {"minutes": minutes, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                      "iterations": tr.iteration, "load1": round(os.getloadavg()[0], 2),
                      "loss_src": loss[0], "loss_dst": loss[1], "snapshot": str(snap.relative_to(out))}
            records.append(record)
            atomic_write_json(out / "progress.json", {"args": _args_record(args), "records": records})
            paused += time.monotonic() - t0
            paused_cpu += time.process_time() - c0
            log(f"checkpoint {label(minutes)}: iteration {tr.iteration}, {cpu:.0f} CPU-s, load average "
                f"{record['load1']:.2f}, saved in {time.monotonic() - t0:.1f} s")
    finally:
        tr.close()
    shutil.rmtree(model_dir, ignore_errors=True)  # the snapshots hold the weights
    return records


def _args_record(args: argparse.Namespace) -> dict[str, Any]:
    # no extra dst is left out, so runs recorded before the option existed still count as the same training
    return {k: v for k, v in vars(args).items() if k not in ("out",) and not (k == "extra_dst" and not v)}


def trained_records(out: Path, args: argparse.Namespace, checkpoints: list[float]) -> list[dict] | None:
    """The clock records of a finished training in `out` with the same settings, else None."""
    try:
        done = json.loads((out / "progress.json").read_text())
    except (OSError, ValueError):
        return None
    records = done.get("records", [])
    same = {k: v for k, v in done.get("args", {}).items() if k not in EVAL_ONLY} == \
        {k: v for k, v in _args_record(args).items() if k not in EVAL_ONLY}
    if not same or [r["minutes"] for r in records] != checkpoints:
        return None
    if not all((out / r["snapshot"] / "latest.json").exists() for r in records):
        return None
    return records


# -- evaluation ----------------------------------------------------------------------------------------------
def face_embeddings(path: Path, embedder: Any) -> list[np.ndarray | None]:
    """dlib descriptor of the largest face of every frame of `path` (None where no face is tracked)."""
    from facedouble.extract.pipeline import ExtractConfig, track_faces
    from facedouble.extract.track import largest_face
    from facedouble.io.video import open_source

    return [embedder.embed(frame.image, largest_face(faces).landmarks) if faces else None
            for frame, faces in track_faces(open_source(path), ExtractConfig(progress=False))]


class Evaluator:
    """What every checkpoint is measured against, computed once: references, target embeddings, held-out faces."""

    def __init__(self, data: dict[str, Any], resolution: int, face_type: str):
        from facedouble.extract.identity import IdentityEmbedder
        from facedouble.extract.pipeline import reference_embedding
        from facedouble.train.data import FaceBank

        self.data = data
        self.embedder = IdentityEmbedder()
        self.target_clip = data[TARGET]["clip"]
        # the same references build_report takes (its `source` argument), for the held-out clip as well
        self.src_ref = reference_embedding(data[SOURCE]["clip"], self.embedder)
        self.heldout_ref = reference_embedding(data[HELDOUT]["clip"], self.embedder)
        self.target_emb = face_embeddings(self.target_clip, self.embedder)
        held = [e for e in face_embeddings(data[HELDOUT]["clip"], self.embedder) if e is not None]
        self.same_person_ref = float(np.mean([np.linalg.norm(e - self.src_ref) for e in held]))
        self.target_to_source = float(np.mean([np.linalg.norm(e - self.src_ref)
                                               for e in self.target_emb if e is not None]))
        self.held_src = FaceBank(data[HELDOUT]["faces"], resolution, face_type)
        self.held_dst = FaceBank(data[TARGET]["faces"], resolution, face_type, data["dst_heldout"])

    def source_tile(self) -> np.ndarray:
        """The training source's first tracked face, as a strip tile."""
        from facedouble.extract.pipeline import ExtractConfig, track_faces
        from facedouble.extract.track import largest_face
        from facedouble.io.video import open_source

        for frame, faces in track_faces(open_source(self.data[SOURCE]["clip"]), ExtractConfig(progress=False)):
            if faces:
                return face_tile(frame.image, largest_face(faces).landmarks, "source (trained)")
        raise SystemExit("no face in the source clip")

    def target_landmarks(self, snapshot: Path) -> dict[int, np.ndarray]:
        """{frame: the target face's 68 landmarks in frame coordinates} from the merge plan."""
        from facedouble.merge.pipeline import MergeConfig, load_plan
        from facedouble.train.swapper import load_swapper

        plan = load_plan(load_swapper(snapshot), self.data[TARGET]["faces"], MergeConfig(), self.target_clip)
        return {i: jobs[0].landmarks @ jobs[0].to_frame[:, :2].T + jobs[0].to_frame[:, 2]
                for i, jobs in plan.faces.items() if jobs}

    def render(self, snapshot: Path, render_dir: Path, settings: Any = None
               ) -> tuple[Any, dict[int, np.ndarray], dict[int, np.ndarray]]:
        """Merge the target with `snapshot` into a PNG folder; (swapper, {frame: render}, {frame: landmarks})."""
        from facedouble.io.video import open_source
        from facedouble.merge.pipeline import MergeConfig, composite_frame, crop_faces, load_plan
        from facedouble.train.swapper import load_swapper

        model = load_swapper(snapshot)
        config = MergeConfig()
        plan = load_plan(model, self.data[TARGET]["faces"], config, self.target_clip)
        settings, res = settings or config.face_settings(), plan.resolution
        frames = list(open_source(self.target_clip))
        with_faces = [f for f in frames if plan.faces.get(f.index)]
        crops = {f.index: crop_faces(f.image, plan.faces[f.index], res) for f in with_faces}
        stacked = [c for f in with_faces for c in crops[f.index]]
        rgb, learned = model.swap(np.stack(stacked)) if stacked else (None, None)
        shutil.rmtree(render_dir, ignore_errors=True)
        render_dir.mkdir(parents=True)
        images, landmarks, pos = {}, {}, 0
        for frame in frames:
            jobs = plan.faces.get(frame.index) or []
            image = frame.image
            if jobs:
                n = len(jobs)
                image = composite_frame(frame, jobs, crops[frame.index], rgb[pos:pos + n], learned[pos:pos + n],
                                        settings, res).image
                pos += n
                landmarks[frame.index] = jobs[0].landmarks @ jobs[0].to_frame[:, :2].T + jobs[0].to_frame[:, 2]
            images[frame.index] = image
            cv2.imwrite(str(render_dir / f"{frame.index:06d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        return model, images, landmarks

    def measure(self, snapshot: Path, render_dir: Path, settings: Any = None
                ) -> tuple[dict[str, float], dict[int, np.ndarray], dict[int, np.ndarray]]:
        """Every metric of one snapshot; also its render's frames and the target's landmarks (for the strip)."""
        import torch

        from facedouble.nn import checkpoint as ck
        from facedouble.report.build import ReportConfig, build_report
        from facedouble.train.models.presets import build_model
        from facedouble.train.preview import reconstruction_ssim

        model, images, landmarks = self.render(snapshot, render_dir, settings)
        report = build_report(render_dir, self.target_clip, self.data[SOURCE]["clip"],
                              ReportConfig(hands=False, progress=False))
        s = report["summary"]

        def mean(key: str) -> float:
            return float(s[key]["mean"]) if s.get(key) else math.nan

        row = {key: mean(key) for key in ("pose_error", "mouth_error", "eyes_error", "gaze_error", "seam_score",
                                          "seam_step")}
        row["id_to_source"], row["id_to_target"] = mean("identity_to_source"), mean("identity_to_target")
        row["closer_to_source_share"] = _num(s.get("closer_to_source_share"))
        row["residual_flicker"] = _num(s.get("residual_flicker"))
        # the held-out source clip: the same descriptors, against the held-out clip's reference
        to_held, closer = [], []
        for e, t in zip(face_embeddings(render_dir, self.embedder), self.target_emb, strict=False):
            if e is None:
                continue
            to_held.append(float(np.linalg.norm(e - self.heldout_ref)))
            if t is not None:
                closer.append(to_held[-1] < float(np.linalg.norm(e - t)))
        row["id_to_heldout"] = float(np.mean(to_held)) if to_held else math.nan
        row["closer_to_heldout_share"] = float(np.mean(closer)) if closer else math.nan
        net = build_model(model.config)
        net.load_state_dict(ck.load_checkpoint(snapshot, with_optimizer=False).weights)
        with torch.inference_mode():
            row["ssim_heldout_src"] = reconstruction_ssim(net, self.held_src.images, model.resolution, side="src",
                                                          masks=self.held_src.masks)
            row["ssim_heldout_dst"] = reconstruction_ssim(net, self.held_dst.images, model.resolution, side="dst",
                                                          masks=self.held_dst.masks)
        row["same_person_ref"], row["target_to_source"] = self.same_person_ref, self.target_to_source
        return row, images, landmarks


def _num(value: Any) -> float:
    return float(value) if value is not None else math.nan


def strip_frame(landmarks: dict[int, np.ndarray]) -> int:
    """The target frame with the widest-open mouth (inner lips 62/66 over the inter-ocular distance)."""
    from facedouble.face.align import inter_ocular

    return max(landmarks, key=lambda i: float(np.linalg.norm(landmarks[i][66] - landmarks[i][62]))
               / max(inter_ocular(landmarks[i]), 1e-6))


def face_tile(image: np.ndarray, landmarks: np.ndarray, caption: str, height: int = 160) -> np.ndarray:
    """A square crop around the face (the landmarks' box grown by 35 %), `height` px, captioned below."""
    x0, y0 = landmarks.min(0)
    x1, y1 = landmarks.max(0)
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2 - 0.1 * (y1 - y0), 0.675 * max(x1 - x0, y1 - y0)
    mat = np.array([[height / (2 * half), 0, height / 2 - cx * height / (2 * half)],
                    [0, height / (2 * half), height / 2 - cy * height / (2 * half)]])
    crop = cv2.warpAffine(image, mat, (height, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    bar = np.full((22, height, 3), 255, np.uint8)
    cv2.putText(bar, caption, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([crop, bar])


# -- outputs -------------------------------------------------------------------------------------------------
def fmt(value: Any, column: str) -> str:
    """A table cell."""
    if isinstance(value, float) and not math.isfinite(value):
        return "-"
    if column in ("iterations",):
        return f"{int(value):,}"
    if column in ("wall_s", "cpu_s"):
        return f"{value:.0f}"
    if column in ("minutes", "load1"):
        return f"{value:g}"
    if column == "pose_error":
        return f"{value:.1f}"
    if column.endswith("share"):
        return f"{100 * value:.0f} %"
    return f"{value:.3f}"


def write_outputs(out: Path, rows: list[dict], header: list[str], strip: np.ndarray | None,
                  variants: list[tuple[str, dict]] = ()) -> None:
    """quality.csv, quality.md, quality.png and strip.png into `out` (atomic writes); `variants` ((merge
    setting, row) of the last checkpoint merged otherwise) are a second table in quality.md."""
    from facedouble.io.atomic import atomic_write_bytes, atomic_write_text

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{row[k]:.6g}" if isinstance(row[k], float) else row[k]) for k in COLUMNS})
    atomic_write_text(out / "quality.csv", buf.getvalue())
    table_cols = ["minutes", "iterations", "cpu_s"] + [m[0] for m in METRICS]
    names = {"minutes": "train min (wall)", "iterations": "iterations", "cpu_s": "CPU-s"} | \
            {key: f"{name} ({unit})" for key, name, unit in METRICS}
    lines = [*(f"{h}  " for h in header), "",
             "| " + " | ".join(names[c] for c in table_cols) + " |",
             "|" + "---|" * len(table_cols)]
    lines += ["| " + " | ".join(fmt(r[c], c) for c in table_cols) + " |" for r in rows]
    if variants:
        merged = [m[0] for m in METRICS if not m[0].startswith("ssim_")]  # held-out SSIM is the model's alone
        last = fmt(rows[-1]["minutes"], "minutes")
        lines += ["", f"The last checkpoint ({last} min) merged with other settings:", "",
                  "| merge | " + " | ".join(names[c] for c in merged) + " |", "|" + "---|" * (len(merged) + 1),
                  "| default | " + " | ".join(fmt(rows[-1][c], c) for c in merged) + " |"]
        lines += ["| " + setting + " | " + " | ".join(fmt(r[c], c) for c in merged) + " |" for setting, r in variants]
    atomic_write_text(out / "quality.md", "\n".join(lines) + "\n")
    ok, png = cv2.imencode(".png", cv2.cvtColor(plot(rows, header[0]), cv2.COLOR_RGB2BGR))
    if ok:
        atomic_write_bytes(out / "quality.png", png.tobytes())
    if strip is not None:
        ok, png = cv2.imencode(".png", cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
        if ok:
            atomic_write_bytes(out / "strip.png", png.tobytes())


def plot(rows: list[dict], title: str) -> np.ndarray:
    """Small multiples, one metric against training minutes each, as an RGB image (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 4
    nrows = math.ceil(len(METRICS) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.4 * nrows), squeeze=False)
    x = [r["minutes"] for r in rows]
    for ax, (key, name, unit) in zip(axes.flat, METRICS, strict=False):
        ax.plot(x, [r[key] for r in rows], "o-", color="tab:blue", markersize=3)
        if min(x) > 0 and max(x) / min(x) >= 8:  # checkpoints that double: even spacing on a log axis
            ax.set_xscale("log")
            ax.set_xticks(x, [f"{v:g}" for v in x])
            ax.minorticks_off()
        if key in ("id_to_source", "id_to_heldout"):
            ax.axhline(rows[0]["same_person_ref"], color="tab:green", ls="--", lw=1, label="same person")
            ax.axhline(rows[0]["target_to_source"], color="tab:red", ls=":", lw=1, label="target (no swap)")
            ax.legend(fontsize=6, loc="best")
        if key == "seam_score":
            ax.axhline(1.0, color="grey", ls=":", lw=1)
        ax.set_title(f"{name}\n({unit})", fontsize=7)
        ax.set_xlabel("training minutes (wall)", fontsize=6)
        ax.tick_params(labelsize=6)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(METRICS):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image


def save_row(path: Path, row: dict[str, Any]) -> None:
    """One checkpoint's measured row as JSON (atomic); NaN, which JSON cannot hold, as null."""
    from facedouble.io.atomic import atomic_write_json

    atomic_write_json(path, {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()})


def load_row(path: Path) -> dict[str, Any]:
    """A row `save_row` wrote, nulls back to NaN."""
    return nulls_to_nan(json.loads(path.read_text()))


def nulls_to_nan(row: dict[str, Any]) -> dict[str, Any]:
    """`row` with None (a figure not measured, or JSON's null) as NaN, as the table and plot expect."""
    return {k: (math.nan if v is None else v) for k, v in row.items()}


# -- main ----------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="quick96")
    ap.add_argument("--minutes", type=float, default=120.0, help="training budget, wall minutes")
    ap.add_argument("--checkpoints", help="comma list of minutes (default 5,10,20,40,80,120, cut at --minutes)")
    ap.add_argument("--out", type=Path, help="output folder (default bench/data/quality_<preset>[_emp])")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eyes-mouth-priority", action="store_true", help="train with eyes-mouth priority")
    ap.add_argument("--frames", type=int, default=75, help="frames of each clip used (GRID clips have 75)")
    ap.add_argument("--plate-parts", metavar="PARTS",
                    help="also merge the last checkpoint with --keep-from-plate PARTS (mouth, eyes or mouth,eyes)")
    ap.add_argument("--extra-dst", action="append", default=[], metavar="STEM",
                    help="another GRID clip as one more dst identity (repeatable; DF presets): multi-identity training")
    args = ap.parse_args(argv)
    if args.minutes <= 0 or args.frames < 2 or args.threads < 1:
        ap.error("--minutes must be > 0, --frames >= 2, --threads >= 1")
    if args.plate_parts:
        from facedouble.merge.region import parse_plate_parts

        try:
            parse_plate_parts(args.plate_parts)
        except Exception as exc:  # noqa: BLE001 - the merge option's own one-line error
            ap.error(f"--plate-parts: {exc}")
    taken = {SOURCE, HELDOUT, TARGET}
    for stem in args.extra_dst:
        if stem in taken or not (GRID_DIR / f"{stem}.mpg").is_file():
            ap.error(f"--extra-dst {stem}: not a GRID clip stem other than {', '.join(sorted(taken))} and the "
                     "other extras")
        taken.add(stem)
    return args


def run(args: argparse.Namespace) -> Path:
    """Train (unless done), evaluate every checkpoint (unless measured), write the outputs; returns --out."""
    import torch

    from facedouble.io.lock import OutputLock
    from facedouble.io.video import open_source
    from facedouble.train.models.presets import preset

    mcfg = preset(args.preset)
    out = args.out or Path(__file__).resolve().parent / "data" / \
        f"quality_{args.preset}{'_emp' if args.eyes_mouth_priority else ''}{'_multidst' if args.extra_dst else ''}"
    out.mkdir(parents=True, exist_ok=True)
    checkpoints = parse_checkpoints(args.checkpoints, args.minutes)
    torch.set_num_threads(args.threads)  # training and evaluation alike (an evaluation-only re-run too)
    lock = OutputLock(out / ".quality.lock", "bench.quality")
    try:
        load_start = os.getloadavg()
        data = prepare(out / "work", mcfg.resolution, args.frames, tuple(args.extra_dst))
        records = trained_records(out, args, checkpoints)
        if records is None:
            records = train(args, out, data, checkpoints)
        else:
            log(f"training already done in {out}: evaluating")
        log("evaluating the checkpoints")
        ev = Evaluator(data, mcfg.resolution, mcfg.face_type)
        rows, renders, frame_lms = [], {}, {}
        for rec in records:
            cached = out / "eval" / f"{label(rec['minutes'])}.json"
            render_dir = out / "renders" / label(rec["minutes"])
            if cached.exists() and (render_dir / f"{0:06d}.png").exists():
                row = load_row(cached)
                renders[rec["minutes"]] = {f.index: f.image for f in open_source(render_dir)}
            else:
                t0 = time.monotonic()
                row, renders[rec["minutes"]], frame_lms = ev.measure(out / rec["snapshot"], render_dir)
                row = {**rec, **row}
                save_row(cached, row)
                row = nulls_to_nan(row)
                log(f"evaluated {label(rec['minutes'])} in {time.monotonic() - t0:.0f} s: identity to source "
                    f"{row['id_to_source']:.3f}, held-out {row['id_to_heldout']:.3f}, pose {row['pose_error']:.1f}")
            rows.append(row)
        if not frame_lms:  # every checkpoint came from the cache: the target's landmarks from the plan
            frame_lms = ev.target_landmarks(out / records[-1]["snapshot"])
        idx = strip_frame(frame_lms)
        plate = next(f.image for f in open_source(ev.target_clip) if f.index == idx)
        tiles = [ev.source_tile(), face_tile(plate, frame_lms[idx], f"target, frame {idx}")]
        tiles += [face_tile(renders[r["minutes"]][idx], frame_lms[idx], f"{r['minutes']:g} min") for r in rows]
        strip = np.hstack(tiles)
        load_end = os.getloadavg()
        loads = ", ".join(f"{r['load1']:.1f}" for r in rows)
        extra = f" (+ extra dst {', '.join(args.extra_dst)})" if args.extra_dst else ""
        header = [f"bench.quality: {args.preset}{', eyes-mouth priority' if args.eyes_mouth_priority else ''}, "
                  f"src GRID {SOURCE} -> dst GRID {TARGET}{extra}, held-out source clip {HELDOUT} (same man), "
                  f"{args.frames} frames a clip, batch {args.batch}, {args.threads} threads",
                  f"machine: {machine()}; flags {cpu_flags()}; shared with other jobs: load average "
                  f"{load_start[0]:.2f} at start, {load_end[0]:.2f} at the end, per checkpoint "
                  f"{loads}",
                  f"reference lines: same person (held-out clip to the source reference) "
                  f"{ev.same_person_ref:.3f}; no swap (target to the source reference) {ev.target_to_source:.3f}",
                  f"date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"]
        variants = []
        if args.plate_parts:  # the artist's fallback when the model's gaze or teeth fail (merge --keep-from-plate)
            import dataclasses

            from facedouble.merge.pipeline import MergeConfig

            last = records[-1]
            tag = f"{label(last['minutes'])}_keep_{args.plate_parts.replace(',', '_')}"
            cached = out / "eval" / f"{tag}.json"
            if cached.exists():
                row = load_row(cached)
            else:
                settings = dataclasses.replace(MergeConfig().face_settings(), keep_from_plate=args.plate_parts)
                row, _, _ = ev.measure(out / last["snapshot"], out / "renders" / tag, settings)
                save_row(cached, row)
                log(f"evaluated {tag}: gaze {row['gaze_error']:.3f}, mouth {row['mouth_error']:.3f}")
            variants.append((f"--keep-from-plate {args.plate_parts}", nulls_to_nan(row)))
        write_outputs(out, rows, header, strip, variants)
        log(f"wrote {out / 'quality.md'}, quality.csv, quality.png, strip.png")
    finally:
        lock.release()
    return out


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    run(parse_args(argv))


if __name__ == "__main__":
    main()
