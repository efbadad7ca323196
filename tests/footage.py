"""Test footage made from the real GRID clips (encoded with PyAV's bundled libx264)."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np

from facedouble.io.video import open_source


def write_clip(path: Path, images: list[np.ndarray], fps: int = 25, crf: int = 12, scale: float = 1.0,
               metadata: dict[str, str] | None = None) -> Path:
    """Encode RGB frames as H.264 yuv420p MP4 (near-lossless CRF 12 by default), optionally downscaled and
    with container metadata. One encoder thread keeps the bitstream reproducible."""
    h, w = images[0].shape[:2]
    w2, h2 = int(w * scale) // 2 * 2, int(h * scale) // 2 * 2
    with av.open(str(path), "w", options={"movflags": "use_metadata_tags"} if metadata else {}) as out:
        out.metadata.update(metadata or {})
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w2, h2, "yuv420p"
        stream.options = {"crf": str(crf), "threads": "1"}
        for image in images:
            if scale != 1.0:
                image = cv2.resize(image, (w2, h2), interpolation=cv2.INTER_AREA)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")))
        out.mux(stream.encode())
    return path


def frames_of(path: Path, n: int | None = None) -> list[np.ndarray]:
    """The first `n` RGB frames of a clip (all when n is None)."""
    return [f.image for f in open_source(path)][:n]
