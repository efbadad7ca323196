"""Stand-in models with the Swapper interface, for tests and benchmarks only (they live under tests/ so that
no installed facedouble ships a swapper that pastes one photo on every frame).

* `ShiftSwapper`: returns the input face with a fixed colour shift and an elliptical mask; costs
  nothing, so a benchmark with it measures merge's own overhead.
* `StaticFaceSwapper`: pastes one fixed real face on every frame, so any crop jitter shows one to one.
Benchmarks time real architectures through `load_model` (bench/merge.py `random_model`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from facedouble.merge.pipeline import FrameContext, MergeHooks, MergeResult


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


def _unmarked(ctx: FrameContext) -> None:
    """A post-composite hook that leaves the frame as it is (tests of merge's own mechanics only)."""
    return None


def unmarked_hooks() -> MergeHooks:
    """Hooks that mark nothing: `pipeline.merge` refuses to run without hooks, so the tests of merge's own
    mechanics (segments, shards, resume, flicker) pass these on purpose. Never used outside tests/bench."""
    return MergeHooks(post_composite=[_unmarked])


def merge_unmarked(*args: Any, hooks: MergeHooks | None = None, **kwargs: Any) -> MergeResult | None:
    """`pipeline.merge` with `unmarked_hooks()` when the test gives no hooks of its own."""
    from facedouble.merge.pipeline import merge

    return merge(*args, hooks=hooks or unmarked_hooks(), **kwargs)
