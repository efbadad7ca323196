"""Display rotation of rotated (phone) clips on the way out: a render keeps its plate's display matrix.

The frame reader turns every frame upright (facedouble.io.video), so faces are found and rendered upright.
A render written upright with no display matrix would play the same, but it would no longer be the plate's
layout: an editor conforming it over the original, or a tool reading the stored pixels, would find it turned
a quarter. So the video writer turns each rendered frame back to the stored orientation and the output
carries the plate's display matrix: stored pixels, size and rotation all match the plate's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

QUARTERS = (0, 90, 180, 270)


def _quarters(rotation: int) -> int:
    rotation = int(rotation) % 360
    if rotation not in QUARTERS:
        raise ValueError(f"display rotation must be a quarter turn, got {rotation}")
    return rotation // 90


def stored_size(width: int, height: int, rotation: int) -> tuple[int, int]:
    """(width, height) of the stored pixels of an upright width x height frame shown turned by `rotation`."""
    return (height, width) if _quarters(rotation) % 2 else (width, height)


def to_stored(image: np.ndarray, rotation: int) -> np.ndarray:
    """An upright frame turned back to the stored orientation (the inverse of the reader's turn)."""
    quarters = _quarters(rotation)
    return np.ascontiguousarray(np.rot90(image, -quarters)) if quarters else image


def set_display_rotation(stream: Any, rotation: int) -> None:
    """Give an output video stream (PyAV, before its first packet) the display matrix of `rotation` degrees
    counter-clockwise; nothing for 0."""
    if _quarters(rotation):
        stream.set_display_rotation(int(rotation) % 360)


class StoredOrientation:
    """Wraps a segment encoder (open/write/close/abort/shutdown) so upright frames are encoded in a rotated
    clip's stored orientation; the display matrix is added when the segments are joined (see
    `set_display_rotation`; the rotation travels in the merge's plan.json)."""

    def __init__(self, encoder: Any, rotation: int):
        self._encoder, self.rotation = encoder, int(rotation) % 360
        _quarters(self.rotation)

    def open(self, path: Any, width: int, height: int, *args: Any, **kwargs: Any) -> None:
        """Start a segment of upright width x height frames (stored turned)."""
        self._encoder.open(path, *stored_size(width, height, self.rotation), *args, **kwargs)

    def write(self, image: np.ndarray, pts: int) -> None:
        """Queue one upright frame."""
        self._encoder.write(to_stored(image, self.rotation), pts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._encoder, name)


def stored_orientation(encoder: Any, rotation: int) -> Any:
    """`encoder` itself for an unrotated clip, else wrapped in StoredOrientation."""
    return StoredOrientation(encoder, rotation) if _quarters(rotation) else encoder
