"""Test footage made from the real GRID clips (encoded with PyAV's bundled libx264)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from facedouble.io.video import open_source


def write_clip(path: Path, images: list[np.ndarray], fps: int = 25) -> Path:
    """Encode RGB frames as a near-lossless H.264 MP4 (CRF 12)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.height, stream.width = images[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "12"}
        for image in images:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")))
        out.mux(stream.encode())
    return path


def frames_of(path: Path, n: int | None = None) -> list[np.ndarray]:
    """The first `n` RGB frames of a clip (all when n is None)."""
    return [f.image for f in open_source(path)][:n]
