"""Build the quality report: track faces in the render and the target, compare them frame by frame."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facedouble.errors import InputError
from facedouble.extract.identity import IdentityEmbedder
from facedouble.extract.pipeline import ExtractConfig, reference_embedding, track_faces
from facedouble.extract.track import FaceObs, largest_face
from facedouble.io.video import Frame, open_source
from facedouble.report.html import face_thumb
from facedouble.report.metrics import (
    expression_error,
    face_region,
    frame_change,
    gaze_error,
    occluder_untouched,
    pose_error,
    residual_change,
    seam_score,
    seam_step,
    seam_width,
    ssim_region,
    swap_region,
)

# Metrics for which the worst frames are listed; True = higher is worse.
WORST_BY = {"pose_error": True, "mouth_error": True, "eyes_error": True, "identity_to_source": True,
            "change_ratio": True, "residual_flicker": True, "gaze_error": True, "seam_score": True, "seam_step": True,
            "ssim": False, "occluder_untouched": False}
OCCLUDER_CROP = 256  # side of the aligned crop the hand detector's window is built around


@dataclasses.dataclass
class ReportConfig:
    """Settings of `facedouble report`."""

    embed_every: int = 1  # identity embedding on every Nth frame (dlib costs ~40-130 ms a face)
    worst: int = 5  # worst frames listed per metric
    hands: bool = True  # find hands over the target's face (MediaPipe, ~25-40 ms a frame): occluders to check
    labels: str | None = None  # faceset of the target clip: its labels' exclude polygons are occluders too
    progress: bool = True

    def validate(self) -> ReportConfig:
        """Raise a one-line FacedoubleError for an impossible value; return self."""
        from facedouble.errors import FacedoubleError

        for name in ("embed_every", "worst"):
            if getattr(self, name) < 1:
                raise FacedoubleError(f"{name} must be >= 1, got {getattr(self, name)}")
        return self


def _faces_by_frame(path: str | Path, progress: bool) -> Iterator[tuple[Frame, FaceObs | None]]:
    """Each frame of `path` with its largest tracked face (None without one), streamed in order."""
    cfg = ExtractConfig(progress=progress)
    for frame, found in track_faces(open_source(path), cfg):
        yield frame, (largest_face(found) if found else None)


_END = object()


def _pairs(render: str | Path, target: str | Path, progress: bool) -> Iterator[tuple[Frame, FaceObs | None,
                                                                                     Frame, FaceObs | None]]:
    """(render frame, its face, target frame, its face), both clips tracked side by side: only the frames
    the trackers buffer are in memory, never a whole clip. Clips of different lengths -> InputError."""
    for n, (a, b) in enumerate(itertools.zip_longest(_faces_by_frame(render, progress),
                                                     _faces_by_frame(target, progress), fillvalue=_END)):
        if a is _END or b is _END:
            which, other = ("render", "target") if a is _END else ("target", "render")
            raise InputError(f"{which} has {n} frames, {other} more: not the same shot")
        yield a[0], a[1], b[0], b[1]


class _WorstThumbs:
    """Thumbnails of the frames that are, so far, among the `worst` of some metric (bounded memory: at most
    `worst` frames per metric are kept, chosen exactly as summarise() chooses them)."""

    def __init__(self, worst: int):
        self.worst = worst
        self.best: dict[str, list[tuple[int, float, int]]] = {key: [] for key in WORST_BY}  # (order, value, frame)
        self.thumbs: dict[int, np.ndarray] = {}

    def add(self, order: int, row: dict[str, Any], thumb: Callable[[], np.ndarray]) -> None:
        """Offer one frame's row; `thumb` makes its render|target thumbnail pair if it is kept."""
        kept = False
        for key, high in WORST_BY.items():
            if key not in row or not math.isfinite(row[key]):
                continue
            cand = sorted([*self.best[key], (order, row[key], row["frame"])], key=lambda c: c[0])
            # sorted() is stable with reverse=True as well: ties keep frame order, as in summarise()
            self.best[key] = sorted(cand, key=lambda c: c[1], reverse=high)[:self.worst]
            kept |= any(c[0] == order for c in self.best[key])
        if kept:
            self.thumbs[row["frame"]] = thumb()
        wanted = {c[2] for best in self.best.values() for c in best}
        for idx in [i for i in self.thumbs if i not in wanted]:
            del self.thumbs[idx]


def _labelled_by_frame(folder: str | None) -> dict[int, list[Any]]:
    """{frame index: metadata of that frame's labelled faces} of the `labels` faceset (empty without one)."""
    if folder is None:
        return {}
    from facedouble.faceset import Faceset

    if not Path(folder).is_dir():
        raise InputError(f"labels faceset not found: {folder}")
    out: dict[int, list[Any]] = {}
    for _, meta in Faceset(folder).metas():
        if meta.labels is not None and meta.labels.exclude:
            out.setdefault(meta.frame_index, []).append(meta)
    return out


def occluder_region(target_rgb: np.ndarray, face: FaceObs, region: np.ndarray, labelled: list[Any],
                    hands: bool = True) -> np.ndarray:
    """Boolean frame mask of what covers the target's face: detected hands over the face region, and the
    excluded parts of labelled faces' outlines (their labels are authoritative, so not clipped to `region`)."""
    from facedouble.face.align import face_transform, invert
    from facedouble.faceset.labels import FaceLabels
    from facedouble.mask.labels import label_mask

    h, w = target_rgb.shape[:2]
    out = np.zeros((h, w), bool)
    if hands:
        from facedouble.mask.hands import hands_mask

        mat = face_transform(face.landmarks, "full", OCCLUDER_CROP)
        found = hands_mask(target_rgb, mat, OCCLUDER_CROP)
        if found.any():
            out |= (cv2.warpAffine(found, invert(mat), (w, h), flags=cv2.INTER_LINEAR) > 0.5) & region
    for meta in labelled:
        outline = label_mask(FaceLabels(meta.labels.include, []), meta.size)
        covered = outline * (1 - label_mask(meta.labels, meta.size))
        out |= cv2.warpAffine(covered, meta.inverse, (w, h), flags=cv2.INTER_LINEAR) > 0.5
    return out


def build_report(render: str | Path, target: str | Path, source: str | Path,
                 cfg: ReportConfig | None = None) -> dict[str, Any]:
    """Per-frame metrics and their summary (JSON-ready), plus the worst frames' render|target thumbnails
    under '_thumbs' ({frame: RGB image}). Frames are streamed: memory stays bounded whatever the clip's length
    (the trackers' few buffered frames, the previous pair for the frame-to-frame metrics, small thumbnails)."""
    cfg = cfg or ReportConfig()
    embedder = IdentityEmbedder()
    src_identity = reference_embedding(source, embedder)
    labelled = _labelled_by_frame(cfg.labels)
    rows: list[dict[str, Any]] = []
    render_change = target_change = residual = residual_target = 0.0
    occ_untouched = occ_total = 0
    worst = _WorstThumbs(cfg.worst)
    prev: tuple[Frame, Frame, bool] | None = None  # the previous pair and whether its target had a face
    for i, (rf, r, tf, t) in enumerate(_pairs(render, target, cfg.progress)):
        row: dict[str, Any] = {"frame": rf.index, "timestamp": rf.timestamp, "face": r is not None}
        if t is not None and (cfg.hands or tf.index in labelled):  # the render's face need not be found
            occ = occluder_region(tf.image, t, face_region(tf.image.shape, t.mesh, t.landmarks),
                                  labelled.get(tf.index, []), cfg.hands)
            kept, total = occluder_untouched(rf.image, tf.image, occ)
            if total:
                row["occluder_px"], row["occluder_untouched"] = total, kept / total
                occ_untouched, occ_total = occ_untouched + kept, occ_total + total
        if r is not None and t is not None:
            region = face_region(tf.image.shape, t.mesh, t.landmarks)
            row["pose_error"] = pose_error(r.landmarks, t.landmarks)
            row["mouth_error"], row["eyes_error"] = expression_error(r.landmarks, t.landmarks)
            row["ssim"] = ssim_region(rf.image, tf.image, region)
            row["gaze_error"] = gaze_error(r.mesh, t.mesh)
            # The report gets no mask: the seam is measured where this render's face meets the plate.
            width = seam_width(t.landmarks)
            edge = swap_region(rf.image, tf.image, region, width)
            row["seam_score"] = seam_score(rf.image, tf.image, edge, width)
            row["seam_step"] = seam_step(rf.image, tf.image, edge, width)
            if i % cfg.embed_every == 0:
                e_render = embedder.embed(rf.image, r.landmarks)
                e_target = embedder.embed(tf.image, t.landmarks)
                row["identity_to_source"] = float(np.linalg.norm(e_render - src_identity))
                row["identity_to_target"] = float(np.linalg.norm(e_render - e_target))
                row["closer_to_source"] = row["identity_to_source"] < row["identity_to_target"]
            if prev is not None and prev[2] and prev[1].index == tf.index - 1:
                rc = frame_change(rf.image, prev[0].image, region)
                tc = frame_change(tf.image, prev[1].image, region)
                res, res_tc = residual_change(rf.image, tf.image, prev[0].image, prev[1].image, region)
                render_change, target_change = render_change + rc, target_change + tc
                residual, residual_target = residual + res, residual_target + res_tc
                row["change_ratio"] = rc / tc if tc > 0 else (1.0 if rc == 0 else math.inf)
                row["residual_flicker"] = res / res_tc if res_tc > 0 else (0.0 if res == 0 else math.inf)
        rows.append(row)
        worst.add(i, row, lambda rf=rf, tf=tf, r=r, t=t: np.hstack([
            face_thumb(rf.image, None if r is None else r.landmarks),
            face_thumb(tf.image, None if t is None else t.landmarks)]))
        prev = (rf, tf, t is not None)  # only the previous pair is kept, for the frame-to-frame metrics
    return {"render": str(render), "target": str(target), "source": str(source), "frames": rows,
            "summary": summarise(rows, render_change, target_change, cfg.worst, (residual, residual_target),
                                 (occ_untouched, occ_total)),
            "_thumbs": worst.thumbs}


def summarise(rows: list[dict[str, Any]], render_change: float, target_change: float, worst: int,
              residual: tuple[float, float] = (0.0, 0.0), occluders: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    """Means, shares and the worst frames of each metric.

    `residual_flicker` (0 = moves as the plate does) is the clip's residual change over the target's change
    (`residual`: both sums, from metrics.residual_change); `flicker` repeats it for callers of the old key.
    The old render/target change ratio, which calls a frozen face "more stable than the original", is
    kept as `face_stability_ratio`. `occluder_untouched` is the share of all occluder pixels of the clip the
    render left as the plate had them (`occluders`: untouched and total pixel counts; None without occluders).
    """
    def values(key: str) -> list[float]:
        return [r[key] for r in rows if key in r and r[key] is not None and math.isfinite(r[key])]

    closer = [r["closer_to_source"] for r in rows if "closer_to_source" in r]
    summary: dict[str, Any] = {
        "frames": len(rows),
        "face_share": sum(r["face"] for r in rows) / max(1, len(rows)),
        "closer_to_source_share": sum(closer) / len(closer) if closer else None,
        "residual_flicker": residual[0] / residual[1] if residual[1] > 0 else None,
        "face_stability_ratio": render_change / target_change if target_change > 0 else None,
    }
    summary["flicker"] = summary["residual_flicker"]
    summary["occluder_untouched"] = occluders[0] / occluders[1] if occluders[1] else None
    summary["occluder_frames"] = sum("occluder_px" in r for r in rows)
    for key in ("pose_error", "mouth_error", "eyes_error", "gaze_error", "seam_score", "seam_step", "ssim",
                "identity_to_source", "identity_to_target"):
        vals = values(key)
        summary[key] = {"mean": float(np.mean(vals)), "median": float(np.median(vals)), "max": float(np.max(vals)),
                        "min": float(np.min(vals))} if vals else None
    summary["worst_frames"] = {
        key: [r["frame"] for r in sorted((r for r in rows if key in r and math.isfinite(r[key])),
                                         key=lambda r, k=key: r[k], reverse=high)[:worst]]
        for key, high in WORST_BY.items()
    }
    return summary
