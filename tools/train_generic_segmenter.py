"""Retrain the generic segmenter shipped in facedouble/mask/data/generic, reproducibly, in one command.

    nice -n 10 python tools/train_generic_segmenter.py [--work DIR] [--iters N] [--threads 2]

1. extracts the labelled clips of ../shared/data (every Intel frame, every 5th GRID frame; 256 px, full
   face type) into WORK/<split>/<clip> (reused when already there: extraction is deterministic),
2. imports facedouble/mask/data/labels.json into them (held-out clips go to WORK/heldout and are never
   trained on),
3. runs `facedouble mask train` on the train facesets (seed 0, fixed iteration count),
4. then a second, shorter stage from those weights at a lower learning rate with the tone and beard
   augmentation on (`--tone`, `--shade`: darker skin, warm light, facial hair kept as face; seed 1),
5. with `--outline`, a third stage from those weights that also gives the network the face outline from the
   landmarks (`--prior outline`: the RGB weights widened by a zero-weighted 4th input channel),
6. exports the weights (safetensors) + segmenter.json into facedouble/mask/data/generic.

About 14 minutes in all with --outline on 2 otherwise idle cores of an Intel Xeon (Sapphire Rapids class,
AVX-512 BF16 + AMX), extraction included; a fresh run there (2026-12-08) exported weights bit-identical to the
shipped ones. `python -m bench.mask` then measures it on the held-out faces.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "facedouble" / "mask" / "data"
FOOTAGE = ROOT.parent / "shared" / "data"
ITERS = 3500
LR_ITERS = 3500  # horizon of the cosine learning-rate decay
STAGE2 = {"iters": 800, "lr": 3e-4, "seed": 1, "tone": 0.3, "shade": 0.5}  # the tone/beard stage
STAGE3 = {"iters": 1000, "lr": 3e-4, "seed": 2, "tone": 0.3, "shade": 0.5, "prior": "outline"}  # --outline


def clips(footage: Path) -> dict[str, tuple[Path, int]]:
    """clip file name -> (path, every_nth) of the footage the labels were drawn on."""
    out = {p.name: (p, 1) for p in sorted((footage / "intel").glob("*.mkv"))}
    out.update({p.name: (p, 5) for p in sorted((footage / "grid").glob("*.mpg"))})
    return out


def prepare(work: Path, footage: Path = FOOTAGE, labels_file: Path = DATA / "labels.json") -> dict[str, list[Path]]:
    """Extract + label the facesets; returns {"train": [...], "heldout": [...]} faceset folders."""
    from facedouble.extract.pipeline import ExtractConfig, extract
    from facedouble.faceset import Faceset
    from facedouble.mask.labelfile import apply_labels

    raw = json.loads(labels_file.read_text("utf-8"))
    faces, split = raw["faces"], raw["split"]
    by_clip: dict[str, dict[str, dict]] = {}
    for name, entry in faces.items():
        by_clip.setdefault(name.rsplit("_", 3)[0], {})[name] = entry
    out: dict[str, list[Path]] = {"train": [], "heldout": []}
    for clip_name, (path, nth) in clips(footage).items():
        entries = by_clip.get(path.stem)
        if not entries:
            continue
        which = {split[n] for n in entries}
        if len(which) != 1:
            raise SystemExit(f"{clip_name}: a clip must be wholly train or held-out")
        folder = work / which.pop() / path.stem
        have = {p.name for p in Faceset(folder).paths()} if folder.is_dir() else set()
        if not set(entries) <= have:
            shutil.rmtree(folder, ignore_errors=True)
            extract(path, folder, ExtractConfig(size=256, face_type="full", every_nth=nth, embed_every=100000,
                                                progress=False))
            have = {p.name for p in Faceset(folder).paths()}
            missing = sorted(set(entries) - have)
            if missing:
                raise SystemExit(f"{clip_name}: extraction did not give labelled face(s) {missing[:3]}")
        apply_labels(folder, entries, f"{labels_file} ({path.stem})")
        out[split[next(iter(entries))]].append(folder)
    return out


def export(model_dir: Path, dest: Path, stages: list[dict]) -> None:
    """Copy the newest checkpoint's weights + config into `dest` (the shipped layout)."""
    from facedouble.io.atomic import atomic_write_bytes, atomic_write_json
    from facedouble.nn.checkpoint import checkpoint_dir, load_state

    ckpt, _ = checkpoint_dir(model_dir)
    state = load_state(model_dir)
    dest.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(dest / "weights.safetensors", (ckpt / "weights.safetensors").read_bytes())
    atomic_write_json(dest / "segmenter.json", {**state["config"], "trained": {
        k: state[k] for k in ("iteration", "seed", "batch_size", "lr", "faces", "occluders", "bf16")},
        "stages": stages,
        "labels": "facedouble/mask/data/labels.json (split=train)",
        "command": "python tools/train_generic_segmenter.py"
                   + (" --outline" if any(stage.get("prior") == "outline" for stage in stages) else "")})


def main(argv: list[str] | None = None) -> int:
    """CLI entry."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path.home() / ".cache" / "facedouble" / "segmenter")
    ap.add_argument("--iters", type=int, default=ITERS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=DATA / "generic")
    ap.add_argument("--fresh", action="store_true", help="start the model over (else an interrupted run resumes)")
    ap.add_argument("--outline", action="store_true",
                    help="a third stage that also gives the model the face outline from the landmarks")
    args = ap.parse_args(argv)
    sets = prepare(args.work)
    model = args.work / "model"
    if args.fresh:
        shutil.rmtree(model, ignore_errors=True)
    from facedouble.cli import main as cli

    train = [a for f in sets["train"] for a in ("--faceset", str(f))]
    rc = cli(["mask", "train", *train, "--model", str(model), "--max-iters", str(args.iters),
              "--lr-iters", str(LR_ITERS), "--seed", "0",
              "--threads", str(args.threads), "--save-every-min", "5"])
    if rc:
        return rc
    stages, previous = [{"iters": args.iters, "lr": 1e-3, "seed": 0}], model
    train = [a for f in sorted(sets["train"]) for a in ("--faceset", str(f))]  # the later stages' face order
    for name, stage in (("model_stage2", STAGE2), ("model_stage3", STAGE3 if args.outline else None)):
        if stage is None:
            continue
        final = args.work / name
        if args.fresh:
            shutil.rmtree(final, ignore_errors=True)
        extra = ["--prior", stage["prior"]] if "prior" in stage else []
        rc = cli(["mask", "train", *train, "--model", str(final), "--from", str(previous),
                  "--max-iters", str(stage["iters"]), "--lr", str(stage["lr"]), "--seed", str(stage["seed"]),
                  "--tone", str(stage["tone"]), "--shade", str(stage["shade"]), *extra,
                  "--threads", str(args.threads), "--save-every-min", "5"])
        if rc:
            return rc
        stages.append(stage)
        previous = final
    export(previous, args.out, stages)
    print(f"exported to {args.out}; held-out facesets: {', '.join(map(str, sets['heldout']))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
