"""Mask benchmark: held-out IoU of each face mask against the labels, `mask apply` speed, a hand-over-mouth merge.

1. IoU (mask > 0.5 vs the label mask, per face, mean) on the held-out labelled faces of
   facedouble/mask/data/labels.json (whole clips never trained on: intel bird, milk, want; GRID lrwp9a,
   swiz3n), for hull, mesh, hull-hands, mesh-hands, the segmenter (xseg) and products, split into occluded
   faces (the label excludes >= 1 % of the face outline: hands, glasses) and clear ones (Intel / GRID).
2. `mask apply` speed at 256 px: the segmenter's forward in batches (fp32 / bf16 autocast, channels-last,
   inference_mode), and the whole command (decode, predict, PNG-encode, rewrite the metadata) on a copy
   of a held-out faceset. Medians of repeats.
3. A merge onto intel/bird.mkv (the signer's hand over the mouth) with a stand-in model that pastes a
   fixed other face: the share of the labelled hand pixels each mask mode let the swapped face overwrite
   (render differs from the plate by more than 8 levels), and docs/mask_before_after.png (plate, hull,
   xseg and the merge default mesh*xseg*-hands, on the frame with the most hand over the face).

Usage: python -m bench.mask [--work DIR] [--model MASK_DIR|generic] [--threads 2] [--picture docs/...png]
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from bench.common import ROOT, machine

sys.path.insert(0, str(ROOT / "tools"))

METHODS = ("hull", "mesh", "hull*-hands", "mesh*-hands", "xseg", "xseg*-hands", "hull*xseg", "mesh*xseg",
           "mesh*xseg*-hands")
CPU = "Intel Xeon (Sapphire Rapids class), 2 cores, AVX-512 BF16 + AMX"


def frames_of(clip: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    """The decoded RGB frames of `clip` with these indices."""
    from facedouble.io.video import open_source

    return {f.index: f.image for f in open_source(clip) if f.index in wanted}


def heldout_faces(folders: list[Path]) -> list[dict]:
    """Every labelled held-out face with its image, metadata, frame and label masks (256 px)."""
    from facedouble.faceset import Faceset, read_face
    from facedouble.faceset.labels import FaceLabels
    from facedouble.mask.labels import label_mask

    out = []
    for folder in folders:
        metas = [(p, m) for p, m in Faceset(folder).metas() if m.labels is not None]
        frames = frames_of(Path(metas[0][1].source), {m.frame_index for _, m in metas})
        for p, m in metas:
            img, _ = read_face(p)
            label = label_mask(m.labels, m.size)
            outline = label_mask(FaceLabels(m.labels.include, []), m.size)
            out.append({"name": p.name, "clip": folder.name, "grid": m.source.endswith(".mpg"), "image": img,
                        "meta": m, "frame": frames[m.frame_index], "label": label,
                        "occluded": (outline.sum() - label.sum()) >= 0.01 * outline.sum()})
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two binary masks (1.0 when both are empty)."""
    a, b = a > 0.5, b > 0.5
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def masks_of(face: dict, xseg: np.ndarray) -> dict[str, np.ndarray]:
    """Every benchmarked mask of one face (aligned pixels of the faceset)."""
    from facedouble.mask.hands import hands_mask
    from facedouble.merge.masks import build_mask

    m = face["meta"]
    mesh = m.mesh @ m.transform[:, :2].T + m.transform[:, 2] if m.mesh is not None else None
    hands = hands_mask(face["frame"], m.transform, m.size)
    return {mode: build_mask(mode, m.size, m.aligned_landmarks, mesh, None, {"xseg": xseg, "hands": hands})
            for mode in METHODS}


def iou_table(faces: list[dict], model: str) -> dict[str, dict[str, float]]:
    """{group: {method: mean IoU}} and prints the table."""
    from facedouble.mask.segmenter.apply import load_segmenter, predict, to_resolution
    from facedouble.mask.segmenter.outline import meta_outline

    net, cfg = load_segmenter(model)
    outlines = np.stack([meta_outline(f["meta"], cfg.resolution) for f in faces]) if cfg.prior == "outline" else None
    probs = predict(net, np.stack([to_resolution(f["image"], cfg.resolution) for f in faces]), outlines=outlines)
    groups = {"occluded (Intel: hands, glasses)": lambda f: f["occluded"],
              "clear Intel": lambda f: not f["occluded"] and not f["grid"],
              "clear GRID": lambda f: not f["occluded"] and f["grid"]}
    scores: dict[str, list[dict[str, float]]] = {g: [] for g in groups}
    for face, prob in zip(faces, probs, strict=True):
        size = face["meta"].size
        xseg = prob if prob.shape[0] == size else cv2.resize(prob, (size, size), interpolation=cv2.INTER_LINEAR)
        row = {k: iou(v, face["label"]) for k, v in masks_of(face, xseg).items()}
        for g, pick in groups.items():
            if pick(face):
                scores[g].append(row)
    table = {g: {k: statistics.mean(r[k] for r in rows) for k in METHODS} for g, rows in scores.items() if rows}
    print(f"\nHeld-out IoU against the labels (mask > 0.5), mean per face; {machine()}")
    print(f"{'faces':<34}{'n':>4}" + "".join(f"{k:>12}" for k in METHODS))
    for g, row in table.items():
        print(f"{g:<34}{len(scores[g]):>4}" + "".join(f"{row[k]:>12.3f}" for k in METHODS))
    return table


def speed(faces: list[dict], model: str, folder: Path, repeats: int = 5) -> dict[str, float]:
    """faces/s of the forward (fp32, bf16) and of the whole `mask apply` on a copy of `folder`."""
    import torch

    from facedouble.mask.segmenter.apply import apply_model, load_segmenter, predict, to_resolution
    from facedouble.mask.segmenter.outline import meta_outline
    from facedouble.nn.precision import native_bf16

    net, cfg = load_segmenter(model)
    batch = np.stack([to_resolution(f["image"], cfg.resolution) for f in faces[:64]])
    outlines = np.stack([meta_outline(f["meta"], cfg.resolution) for f in faces[:64]]) \
        if cfg.prior == "outline" else None
    out = {}
    for name, bf16 in (("forward fp32", False), ("forward bf16", True)):
        if bf16 and not native_bf16():
            continue
        predict(net, batch[:32], bf16=bf16, outlines=None if outlines is None else outlines[:32])
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            predict(net, batch, bf16=bf16, outlines=outlines)
            times.append(time.perf_counter() - t)
        out[name] = len(batch) / statistics.median(times)
    with tempfile.TemporaryDirectory() as tmp:
        times = []
        for i in range(3):
            copy = Path(tmp) / f"fs{i}"
            shutil.copytree(folder, copy)
            t = time.perf_counter()
            n = apply_model(copy, model)
            times.append(time.perf_counter() - t)
        out["mask apply (decode+predict+store)"] = n / statistics.median(times)
    print(f"\nmask apply speed at {cfg.resolution} px, batch 32, torch threads {torch.get_num_threads()}; {CPU}")
    for k, v in out.items():
        print(f"  {k:<38}{v:>8.1f} faces/s")
    return out


def hand_merge(faces: list[dict], model: str, picture: Path | None) -> dict[str, float]:
    """Merge bird.mkv with each mask mode; share of labelled hand pixels (over the mouth) overwritten."""
    import os

    from facedouble.faceset.labels import FaceLabels
    from facedouble.mask.labels import label_mask
    from facedouble.merge.masks import XSEG_MODEL_ENV
    from facedouble.merge.pipeline import MergeConfig, Outputs
    from tests.standin import StaticFaceSwapper
    from tests.standin import merge_unmarked as merge

    bird = [f for f in faces if f["clip"] == "bird"]
    if not bird:
        print("\n(no held-out bird faces: merge measurement skipped)")
        return {}
    donor = next(f for f in faces if f["grid"])["image"]  # a GRID face: clearly not the signer
    donor = cv2.resize(donor, (128, 128), interpolation=cv2.INTER_AREA)
    os.environ[XSEG_MODEL_ENV] = str(model)
    # hand pixels over the face: labelled exclude area inside the face outline, in frame pixels
    hand_px = {}
    for f in bird:
        m = f["meta"]
        outline = label_mask(FaceLabels(m.labels.include, []), m.size)
        hand = outline * (1 - f["label"])
        mouth = np.zeros_like(hand)
        cv2.fillConvexPoly(mouth, cv2.convexHull(np.round(m.aligned_landmarks[48:68]).astype(np.int32)), 1.0)
        if (hand * mouth).sum() < 0.3 * mouth.sum():  # only frames where the hand covers the mouth
            continue
        w, h = m.frame_size
        hand_px[m.frame_index] = cv2.warpAffine(hand, m.inverse, (w, h), flags=cv2.INTER_NEAREST) > 0.5
    modes = ("hull", "hull*-hands", "mesh*-hands", "xseg", "hull*xseg", "mesh*xseg", "mesh*xseg*-hands")
    renders: dict[str, dict[int, np.ndarray]] = {}
    target = frames_of(Path(bird[0]["meta"].source), set(hand_px))
    with tempfile.TemporaryDirectory() as tmp:
        for mode in modes:
            out = Outputs(png_dir=Path(tmp) / mode.replace("*", "_"))
            smooth = "transform_smooth" if "transform_smooth" in {f.name for f in dataclasses.fields(MergeConfig)} \
                else "smooth"  # the render's own crops, unsmoothed: the labels were drawn on those
            cfg = MergeConfig(mask=mode, colour="none", batch=8, segment_frames=100, **{smooth: 0.0})
            merge(StaticFaceSwapper(donor), bird[0]["faceset"], out, cfg, progress=False)
            pngs = sorted(out.png_dir.glob("*.png"))
            renders[mode] = {i: cv2.cvtColor(cv2.imread(str(pngs[i])), cv2.COLOR_BGR2RGB) for i in hand_px}
    result = {}
    print(f"\nMerge onto intel/bird.mkv, {len(hand_px)} frames with the hand over the mouth, labelled hand pixels "
          "over the face:\n  share overwritten by the swapped face (|render - plate| > 8 levels: above H.264 "
          "codec noise) and mean |render - plate| in levels")
    for mode in modes:
        diffs = [np.abs(renders[mode][i].astype(int) - target[i].astype(int)).max(2)[px] for i, px in hand_px.items()]
        result[mode] = statistics.mean(float((d > 8).mean()) for d in diffs)
        mean = statistics.mean(float(d.mean()) for d in diffs)
        print(f"  {mode:<14}{100 * result[mode]:>7.1f} %   {mean:>6.1f}")
    if picture is not None and hand_px:
        best = max(hand_px, key=lambda i: hand_px[i].sum())
        m = next(f["meta"] for f in bird if f["meta"].frame_index == best)
        ys, xs = np.nonzero(cv2.warpAffine(np.ones((m.size, m.size), np.float32), m.inverse, m.frame_size) > 0)
        y0, y1, x0, x1 = max(ys.min(), 0), ys.max(), max(xs.min(), 0), xs.max()
        tiles = []
        for title, img in (("plate", target[best]), ("hull mask", renders["hull"][best]),
                           ("segmenter (xseg)", renders["xseg"][best]),
                           ("default: mesh*xseg*-hands", renders["mesh*xseg*-hands"][best])):
            crop = cv2.resize(img[y0:y1, x0:x1], (320, 320), interpolation=cv2.INTER_CUBIC)
            cv2.putText(crop, title, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 0), 2, cv2.LINE_AA)
            tiles.append(crop)
        picture.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(picture), cv2.cvtColor(np.hstack(tiles), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
        print(f"  picture of frame {best}: {picture}")
    return result


def main(argv: list[str] | None = None) -> int:
    """CLI entry."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path.home() / ".cache" / "facedouble" / "segmenter")
    ap.add_argument("--model", default="generic")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--picture", type=Path, default=None, help="write the before/after PNG here")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: iou,speed,merge")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from train_generic_segmenter import prepare

    sets = prepare(args.work)
    faces = heldout_faces(sets["heldout"])
    for f in faces:
        f["faceset"] = args.work / "heldout" / f["clip"]
    skip = set(args.skip.split(","))
    if "iou" not in skip:
        iou_table(faces, args.model)
    if "speed" not in skip:
        speed(faces, args.model, args.work / "heldout" / "want")
    if "merge" not in skip:
        hand_merge(faces, args.model, args.picture)
    return 0


if __name__ == "__main__":
    sys.exit(main())
