"""The merge's hook points and the records they see (see facedouble.merge.pipeline's docstring).

* `prepare`: called for every rendered frame (not warm-up ones) on the compositing threads, concurrently and in
  any order, with the composited image; returns named values that the post-composite hooks find in
  `FrameContext.prepared`. For the costly per-frame work that depends on this frame alone (the watermark's
  face alignment), so that it runs beside the model instead of in the one thread that writes frames in order.
  It must not change the image.
* `post_composite`: called for every rendered frame, in order, before anything is written; may
  return a replacement image (watermark embedding, explicit-content check, visible label).
* `finalize`: called once with the `MergeResult` after every output is complete (render record,
  C2PA signing - which must stay the very last step).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from facedouble.io.sequence import Plate
from facedouble.merge.config import Outputs


@dataclasses.dataclass
class FrameContext:
    """What a post-composite hook sees for one frame."""

    index: int
    timestamp: float
    image: np.ndarray  # rendered RGB uint8 (H, W, 3)
    target: np.ndarray  # original frame
    alpha: np.ndarray  # float32 (H, W) union of the face mattes
    faces: list[dict[str, Any]]  # per face: track_id, box_xyxy, aligned_to_frame, ...
    fps: float
    frame_count: int | None  # the clip's (container-declared) frame count, for choosing frames to mark
    warmup: bool = False  # True: rendered only to seed flicker statistics; not written
    prepared: dict[str, Any] = dataclasses.field(default_factory=dict)  # what the prepare hooks returned


@dataclasses.dataclass
class MergeResult:
    """Summary of a finished merge (handed to finalize hooks and printed)."""

    frames: int
    frames_with_faces: int
    flicker: float | None
    clip: Path
    outputs: Outputs
    model_hash: str
    consent: dict | None
    settings: dict[str, Any]
    fingerprint: str
    seconds: float = 0.0


PrepareHook = Callable[[FrameContext], "dict[str, Any] | None"]
PostCompositeHook = Callable[[FrameContext], "np.ndarray | None"]
FinalizeHook = Callable[[MergeResult], None]
MetadataHook = Callable[[MergeResult], dict[str, str]]


@dataclasses.dataclass
class MergeHooks:
    """Extension points (trust wiring): see the module docstring."""

    post_composite: list[PostCompositeHook] = dataclasses.field(default_factory=list)
    prepare: list[PrepareHook] = dataclasses.field(default_factory=list)  # on the compositing threads
    metadata: list[MetadataHook] = dataclasses.field(default_factory=list)  # extra MP4 container tags
    finalize: list[FinalizeHook] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Rendered:
    """One composited frame on its way to the sink."""

    index: int
    timestamp: float
    image: np.ndarray
    target: np.ndarray
    alpha: np.ndarray
    faces: list[dict[str, Any]]
    warmup: bool
    deep: np.ndarray | None = None  # the target frame at full precision (Frame.deep), None for 8-bit sources
    plate: Plate | None = None  # the source file's own pixels (Frame.plate) when a sequence output needs them
    prepared: dict[str, Any] = dataclasses.field(default_factory=dict)  # the prepare hooks' values

    def context(self, fps: float, frame_count: int | None) -> FrameContext:
        """What the hooks see of this frame."""
        return FrameContext(self.index, self.timestamp, self.image, self.target, self.alpha, self.faces, fps,
                            frame_count, self.warmup, self.prepared)
