"""The seam at the merge mask's edge, with and without edge matching (`--edge-match`), on a trained model.

    facedouble demo --out demo-output --max-iters 150      # or any trained model and target faceset
    python -m bench.seam --model demo-output/model --faceset demo-output/target-faceset \\
        --clip ../shared/data/grid/lbbc2a.mpg --edge-match 0,12

For every `--every`-th frame the target is merged (no provenance marks: only the pixels matter here) and
measured on the edge of the merge's own mask (alpha > 0.5), in a band of report.metrics.seam_width:

- seam score (report.metrics.seam_score): gradient energy across the edge, render over plate;
- difference seam: the same energy of (render - plate) over the plate's: 0 = no step at the edge, whatever
  the render's sharpness (a blurry render lowers the seam score below 1 even with a visible step);
- |dL|: mean absolute CIE L* difference render - plate in the inner half of the band, and its signed mean on
  the top edge (brows) and on each side (the subject's left is the image's right);
- what the quality report sees without the mask: its seam score and seam step on the edge it finds itself
  (report.metrics.swap_region around the target's face outline), to check that the two agree.
"""

from __future__ import annotations

import argparse
import os

import cv2
import numpy as np


def main() -> None:
    """Print one row of seam figures per --edge-match value."""
    from facedouble.io.video import open_source
    from facedouble.merge.overrides import FaceSettings
    from facedouble.merge.pipeline import MergeConfig, composite_frame, crop_faces, load_plan
    from facedouble.report.metrics import (
        edge_energy,
        face_region,
        lightness,
        seam_score,
        seam_step,
        seam_width,
        swap_region,
    )
    from facedouble.train.swapper import load_swapper

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--faceset", required=True, help="the target faceset")
    ap.add_argument("--clip", help="the target clip (default: the faceset's recorded source)")
    ap.add_argument("--edge-match", default="0,12", help="comma list of edge_match values to compare")
    ap.add_argument("--every", type=int, default=3, help="measure every Nth frame")
    ap.add_argument("--mask", default=FaceSettings().mask, help="merge mask mode (default: the merge default)")
    args = ap.parse_args()
    model = load_swapper(args.model, precision="fp32", conv_algo="direct")
    plan = load_plan(model, args.faceset, MergeConfig(), args.clip)
    res = plan.resolution
    frames = [f for f in open_source(plan.clip) if f.index % args.every == 0 and f.index in plan.faces]
    jobs = [plan.faces[f.index] for f in frames]
    crops = [crop_faces(f.image, j, res) for f, j in zip(frames, jobs, strict=True)]
    rgb, learned = model.swap(np.stack([c for cs in crops for c in cs]))
    print(f"# model iteration {model.iteration}, {res} px, {len(frames)} frames of {plan.clip.name}, mask "
          f"{args.mask}; load average "
          f"{os.getloadavg()[0]:.1f}")
    print("| edge_match | seam score (merge edge) | difference seam | mean abs dL | dL top | dL subject's right | "
          "dL subject's left | report: seam score / seam step (found edge) |")
    print("|---|---|---|---|---|---|---|---|")
    for depth in (float(x) for x in args.edge_match.split(",")):
        settings = FaceSettings(edge_match=depth, mask=args.mask)
        rows: dict[str, list[float]] = {k: [] for k in ("seam", "diff", "abs", "top", "right", "left", "r_seam",
                                                         "r_step")}
        pos = 0
        for frame, job, crop in zip(frames, jobs, crops, strict=True):
            n = len(job)
            r = composite_frame(frame, job, crop, rgb[pos:pos + n], learned[pos:pos + n], settings, res)
            pos += n
            lm = job[0].landmarks @ job[0].to_frame[:, :2].T + job[0].to_frame[:, 2]
            width, edge = seam_width(lm), r.alpha > 0.5
            rows["seam"].append(seam_score(r.image, frame.image, edge, width))
            mesh = job[0].mesh @ job[0].to_frame[:, :2].T + job[0].to_frame[:, 2] if job[0].mesh is not None else None
            found = swap_region(r.image, frame.image, face_region(frame.image.shape, mesh, lm), width)
            rows["r_seam"].append(seam_score(r.image, frame.image, found, width))
            rows["r_step"].append(seam_step(r.image, frame.image, found, width))
            diff = r.image.astype(np.float32) - frame.image.astype(np.float32)
            rows["diff"].append(edge_energy(diff, edge, width) / max(edge_energy(frame.image, edge, width), 1e-6))
            kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
            inner = edge & (cv2.erode(edge.astype(np.uint8), kernel) == 0)
            dl = lightness(r.image) - lightness(frame.image)
            ys, xs = np.nonzero(inner)
            cx, cy = lm[27:36].mean(0)
            angle = np.degrees(np.arctan2(ys - cy, xs - cx))
            rows["abs"].append(float(np.abs(dl[ys, xs]).mean()))
            for key, sel in (("top", (angle < -45) & (angle > -135)), ("right", np.abs(angle) >= 135),
                             ("left", np.abs(angle) <= 45)):
                if sel.any():
                    rows[key].append(float(dl[ys[sel], xs[sel]].mean()))
        m = {k: float(np.nanmean(v)) for k, v in rows.items()}
        print(f"| {depth:g} | {m['seam']:.2f} | {m['diff']:.3f} | {m['abs']:.2f} | {m['top']:+.2f} | "
              f"{m['right']:+.2f} | {m['left']:+.2f} | {m['r_seam']:.2f} / {m['r_step']:.2f} |")


if __name__ == "__main__":
    main()
