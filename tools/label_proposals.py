"""Semi-automatic mask label proposals for the generic segmenter (tools/label_proposals.py).

For every face of the given facesets: the MediaPipe face-mesh oval (forehead to chin) is the include
polygon; every hand MediaPipe Hands finds around the face (facedouble.mask.hands) becomes an exclude
polygon: the convex hull of its 21 landmarks, dilated. Hands missed in a frame between two frames of
the same track where the hand was found are interpolated (the detector drops a hand that lies flat on
the face). Writes proposals.json: {face name: {"include", "exclude", "hands", "how"}}; the reviewed and
corrected result is facedouble/mask/data/labels.json (see tools/label_review.py).

    python tools/label_proposals.py OUT.json FACESET [FACESET ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

from facedouble.face.mesh import FACE_OVAL
from facedouble.faceset import Faceset
from facedouble.io.video import open_source
from facedouble.mask.hands import DILATE, HandDetector, hands_near_face


def aligned(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Source-frame points through a 2x3 affine."""
    return points @ m[:, :2].T + m[:, 2]


def dilated_hull(points: np.ndarray, size: int, dilate: float = DILATE) -> np.ndarray:
    """Convex hull of `points` grown outward by `dilate` * size (a polygon, 24+ vertices)."""
    r = dilate * size
    circle = np.stack([np.cos(np.linspace(0, 2 * np.pi, 12, endpoint=False)),
                       np.sin(np.linspace(0, 2 * np.pi, 12, endpoint=False))], 1) * r
    cloud = (points[:, None, :] + circle[None]).reshape(-1, 2)
    hull = cv2.convexHull(cloud.astype(np.float32)).reshape(-1, 2)
    return clip_to_frame(hull.astype(np.float64), size)


def clip_to_frame(poly: np.ndarray, size: int, margin: float = 0.1) -> np.ndarray:
    """A convex polygon clipped to the face image grown by `margin` (labels may not reach far outside)."""
    lo, hi = -margin * size, (1 + margin) * size
    box = np.array([[lo, lo], [hi, lo], [hi, hi], [lo, hi]], np.float32)
    area, inter = cv2.intersectConvexConvex(poly.astype(np.float32), box)
    return np.zeros((0, 2)) if inter is None or area <= 1 else inter.reshape(-1, 2).astype(np.float64)


def propose(folder: Path, det: HandDetector) -> dict[str, dict]:
    """Proposals for one faceset (one clip)."""
    fs = Faceset(folder)
    metas = fs.metas()
    by_frame: dict[int, list[tuple[Path, object]]] = {}
    for p, m in metas:
        by_frame.setdefault(m.frame_index, []).append((p, m))
    src = metas[0][1].source
    found: dict[str, list[np.ndarray]] = {}
    for frame in open_source(src):
        for p, m in by_frame.get(frame.index, []):
            found[p.name] = hands_near_face(frame.image, m.transform, m.size, det)
    out: dict[str, dict] = {}
    ordered = sorted(metas, key=lambda pm: (pm[1].track_id, pm[1].frame_index))
    names = [p.name for p, _ in ordered]
    for i, (p, m) in enumerate(ordered):
        how = "auto-proposal"
        hands = found.get(p.name, [])
        if not hands and 0 < i < len(ordered) - 1:  # a one-frame drop-out: average the neighbours' hands
            a, b = found.get(names[i - 1], []), found.get(names[i + 1], [])
            if a and b and ordered[i - 1][1].track_id == m.track_id == ordered[i + 1][1].track_id:
                hands = [(ha + min(b, key=lambda hb: np.linalg.norm(hb.mean(0) - ha.mean(0)))) / 2 for ha in a]
                how = "auto-proposal (hands interpolated)"
        mesh = aligned(m.mesh, m.transform) if m.mesh is not None else None
        oval = mesh[list(FACE_OVAL)] if mesh is not None else aligned(m.landmarks, m.transform)
        out[p.name] = {"include": [np.round(oval, 1).tolist()],
                       "exclude": [np.round(q, 1).tolist() for q in (dilated_hull(h, m.size) for h in hands)
                                   if len(q) >= 3],
                       "hands": [np.round(h, 1).tolist() for h in hands], "how": how,
                       "size": m.size, "clip": Path(src).name, "frame": m.frame_index}
    return out


def main(argv: list[str]) -> int:
    """CLI entry."""
    out_file, folders = Path(argv[0]), [Path(a) for a in argv[1:]]
    det = HandDetector()
    result: dict[str, dict] = {}
    for folder in folders:
        result.update(propose(folder, det))
        print(f"{folder}: {len(result)} faces so far", flush=True)
    out_file.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
