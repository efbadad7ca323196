"""Stand-in models with the Swapper interface, for tests and benchmarks (not for production renders).

* `ShiftSwapper`: returns the input face with a fixed colour shift and an elliptical mask; costs
  nothing, so a benchmark with it measures merge's own overhead.
* `StaticFaceSwapper`: pastes one fixed real face on every frame, so any crop jitter shows one to one.
Benchmarks time real architectures through `load_model` (bench/merge.py `random_model`).
"""

from __future__ import annotations

import numpy as np


def ellipse_mask(size: int) -> np.ndarray:
    """Soft ellipse covering the central face area of an aligned crop."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    c = (size - 1) / 2.0
    r = ((xx - c) / (0.36 * size)) ** 2 + ((yy - c * 1.1) / (0.44 * size)) ** 2
    return np.clip((1.0 - r) * 4.0, 0.0, 1.0)


class ShiftSwapper:
    """Identity 'swap' with a colour shift: makes every change merge applies visible and checkable."""

    def __init__(self, resolution: int = 128, face_type: str = "full", shift: tuple[float, float, float] = (
            0.12, -0.05, -0.08)):
        self.resolution = resolution
        self.face_type = face_type
        self.model_hash = "standin-shift"
        self.consent: dict | None = None
        self.shift = np.asarray(shift, np.float32)
        self._mask = ellipse_mask(resolution)
        self.calls = 0

    def swap(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Faces (N, R, R, 3) uint8 -> (shifted rgb, ellipse mask)."""
        self.calls += 1
        rgb = np.clip(faces.astype(np.float32) / 255.0 + self.shift, 0.0, 1.0)
        return rgb, np.broadcast_to(self._mask, faces.shape[:3]).copy()


class StaticFaceSwapper:
    """Returns the same face for every input (a perfectly identity-only model): any jitter in the crop
    shows up one to one in the render, which makes it the harshest test of temporal smoothing."""

    def __init__(self, face: np.ndarray, face_type: str = "full"):
        self.resolution = int(face.shape[0])
        self.face_type = face_type
        self.model_hash = "standin-static"
        self.consent: dict | None = None
        self._face = face.astype(np.float32) / 255.0
        self._mask = ellipse_mask(self.resolution)

    def swap(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The stored face and the ellipse mask, once per input."""
        n = len(faces)
        return np.broadcast_to(self._face, (n, *self._face.shape)).copy(), np.broadcast_to(
            self._mask, faces.shape[:3]).copy()
