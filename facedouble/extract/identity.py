"""Identity embeddings: dlib's ResNet face descriptor (128-d), aligned with dlib's 5-point model.

Weights come from the `face-recognition-models` package (CC0 / public-domain models). Its Python
import needs pkg_resources, so the .dat files are located without importing it. dlib's 68-point
model in the same package is never loaded: its training data (iBUG 300-W) forbids commercial use.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np

from facedouble.errors import FacedoubleError

SAME_PERSON_DISTANCE = 0.6  # dlib's documented threshold for its descriptor


def _models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FacedoubleError("package face-recognition-models is not installed (pip install face-recognition-models)")
    return Path(spec.submodule_search_locations[0]) / "models"


class IdentityEmbedder:
    """128-d identity descriptor of a face given its 68-point landmarks. Thread-safe."""

    def __init__(self) -> None:
        import dlib

        models = _models_dir()
        self._dlib = dlib
        self._shape5 = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        self._net = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))
        self._lock = threading.Lock()

    def embed(self, image_rgb: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
        """Descriptor of the face whose landmarks are given (image pixels)."""
        x0, y0 = landmarks68.min(0)
        x1, y1 = landmarks68.max(0)
        rect = self._dlib.rectangle(int(x0), int(y0), int(np.ceil(x1)), int(np.ceil(y1)))
        image = np.ascontiguousarray(image_rgb)
        with self._lock:
            shape = self._shape5(image, rect)
            chip = self._dlib.get_face_chip(image, shape, size=150, padding=0.25)
            return np.asarray(self._net.compute_face_descriptor(chip), dtype=np.float64)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between descriptors (< 0.6: same person by dlib's convention)."""
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))
