"""Dense face mesh (MediaPipe FaceMesh, 478 points with iris) and the 68-point layout derived from it.

The mesh model runs on an eye-levelled square crop around the face, so rolled heads are upright when
the network sees them. The 68 points are fixed blends of two mesh vertices each, chosen once against a
reference 68-point annotator on GRID footage (tools/derive_mesh68.py: mean error 0.038 of the
inter-ocular distance); the reference annotator is never loaded at run time.
"""

from __future__ import annotations

import dataclasses
import os

import cv2
import numpy as np

from facedouble.log import native_stderr_silenced

# (vertex a, vertex b, t): point = (1 - t) * mesh[a] + t * mesh[b], in DFL/iBUG 68-point order.
MESH_TO_68_BLEND: tuple[tuple[int, int, float], ...] = (
    (127, 162, 0.837), (143, 234, 0.726), (93, 187, 0.209), (132, 172, 0.303), (58, 172, 0.913),
    (136, 150, 0.432), (149, 176, 0.131), (148, 176, 0.176), (152, 152, 0.0), (377, 400, 0.215),
    (378, 378, 0.0), (365, 379, 0.327), (288, 397, 0.784), (361, 435, 0.674), (323, 411, 0.118),
    (356, 454, 0.64), (356, 389, 0.879), (70, 70, 0.0), (52, 54, 0.41), (65, 104, 0.474),
    (66, 107, 0.438), (107, 168, 0.239), (8, 336, 0.647), (296, 336, 0.464), (295, 333, 0.461),
    (282, 298, 0.577), (300, 389, 0.057), (8, 168, 0.956), (6, 195, 0.279), (51, 419, 0.472),
    (45, 363, 0.337), (79, 98, 0.534), (99, 141, 0.173), (2, 164, 0.23), (326, 354, 0.199),
    (328, 455, 0.626), (144, 246, 0.959), (159, 160, 0.263), (157, 158, 0.712), (173, 233, 0.179),
    (158, 231, 0.476), (23, 161, 0.407), (398, 453, 0.205), (385, 414, 0.182), (249, 386, 0.871),
    (255, 388, 0.684), (253, 388, 0.383), (385, 451, 0.519), (57, 76, 0.72), (39, 184, 0.285),
    (0, 37, 0.912), (37, 268, 0.512), (11, 267, 0.813), (269, 324, 0.236), (287, 291, 0.834),
    (335, 404, 0.756), (313, 317, 0.487), (83, 316, 0.521), (83, 86, 0.594), (146, 181, 0.668),
    (77, 185, 0.502), (41, 82, 0.826), (13, 15, 0.123), (13, 311, 0.56), (308, 325, 0.225),
    (312, 317, 0.668), (11, 15, 0.647), (72, 86, 0.647),
)
_A = np.array([a for a, _, _ in MESH_TO_68_BLEND])
_B = np.array([b for _, b, _ in MESH_TO_68_BLEND])
_T = np.array([t for _, _, t in MESH_TO_68_BLEND])[:, None]

CROP_SIZE = 256
CROP_SCALE = 1.9  # crop side / inter-feature extent: room for the whole head, like MediaPipe's own ROI


def mesh_to_68(mesh: np.ndarray) -> np.ndarray:
    """68-point landmarks (68, 2) from mesh points (N >= 468, 2 or 3)."""
    pts = mesh[:, :2]
    return (1 - _T) * pts[_A] + _T * pts[_B]


@dataclasses.dataclass
class MeshResult:
    """Mesh in frame pixels plus the derived 68 points."""

    mesh: np.ndarray  # (478, 2)
    landmarks: np.ndarray  # (68, 2)


def levelled_crop(left_eye: np.ndarray, right_eye: np.ndarray, centre: np.ndarray, extent: float,
                  size: int = CROP_SIZE) -> np.ndarray:
    """2x3 affine: frame -> square crop of side `size`, eyes horizontal, `extent` px mapped to the side."""
    dx, dy = right_eye - left_eye
    angle = np.degrees(np.arctan2(dy, dx))
    scale = size / max(extent, 1.0)
    mat = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(angle), float(scale))
    mat[:, 2] += np.array([size / 2, size / 2]) - centre
    return mat


class FaceMeshLandmarker:
    """MediaPipe FaceMesh on eye-levelled crops. One instance per thread."""

    name = "mediapipe"

    def __init__(self) -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")
        with native_stderr_silenced():
            import mediapipe as mp

            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, refine_landmarks=True, max_num_faces=1, min_detection_confidence=0.3)
            # The graph starts its calculators on background threads, which log while starting; one
            # blank frame waits for them, so their chatter happens while stderr is silenced.
            self._mesh.process(np.zeros((CROP_SIZE, CROP_SIZE, 3), np.uint8))

    def close(self) -> None:
        """Release the MediaPipe graph."""
        self._mesh.close()

    def _run(self, frame_rgb: np.ndarray, mat: np.ndarray) -> MeshResult | None:
        crop = cv2.warpAffine(frame_rgb, mat, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        with native_stderr_silenced():  # the graph logs a projection warning on its first face
            result = self._mesh.process(crop)
        if not result.multi_face_landmarks:
            return None
        pts = np.array([(p.x * CROP_SIZE, p.y * CROP_SIZE) for p in result.multi_face_landmarks[0].landmark])
        inv = cv2.invertAffineTransform(mat)
        mesh = pts @ inv[:, :2].T + inv[:, 2]
        return MeshResult(mesh, mesh_to_68(mesh))

    def from_points5(self, frame_rgb: np.ndarray, points5: np.ndarray, box: np.ndarray) -> MeshResult | None:
        """Mesh from a detection: eyes level the crop, the box sets its size."""
        left, right = points5[0], points5[1]
        centre = points5.mean(0)
        extent = CROP_SCALE * max(box[2] - box[0], box[3] - box[1]) * 0.85
        return self._run(frame_rgb, levelled_crop(left, right, centre, extent))

    def from_landmarks(self, frame_rgb: np.ndarray, landmarks68: np.ndarray) -> MeshResult | None:
        """Mesh for the next frame from this frame's 68 points (tracking without the detector)."""
        left, right = landmarks68[36:42].mean(0), landmarks68[42:48].mean(0)
        span = landmarks68.max(0) - landmarks68.min(0)
        centre = (landmarks68.max(0) + landmarks68.min(0)) / 2
        extent = CROP_SCALE * max(span) * 0.95
        return self._run(frame_rgb, levelled_crop(left, right, centre, extent))


LANDMARKERS = {"mediapipe": FaceMeshLandmarker}


def get_landmarker(name: str = "mediapipe") -> FaceMeshLandmarker:
    """Instantiate the landmark backend registered under `name`."""
    from facedouble.errors import FacedoubleError

    try:
        return LANDMARKERS[name]()
    except KeyError:
        raise FacedoubleError(f"unknown landmark model {name!r}; choose from {', '.join(LANDMARKERS)}") from None
