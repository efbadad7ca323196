"""Helpers shared by the benchmarks: footage location, clip writing, machine description."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GRID_DIR = ROOT.parent / "shared" / "data" / "grid"


def grid_clips() -> list[Path]:
    """The GRID sample clips; exits with a message when the shared footage is missing."""
    clips = sorted(GRID_DIR.glob("*.mpg"))
    if not clips:
        raise SystemExit(f"GRID footage not found in {GRID_DIR}")
    return clips


def upscaled_clip(sources: Path | list[Path], out: Path, size: tuple[int, int] = (1280, 720)) -> Path:
    """Re-encode `sources` one after another at `size` (letterboxed to keep the aspect), H.264 CRF 16."""
    from facedouble.io.video import open_source

    width, height = size
    frames = (f for src in ([sources] if isinstance(sources, Path) else sources) for f in open_source(src))
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "16", "preset": "veryfast"}
        for frame in frames:
            h, w = frame.image.shape[:2]
            scale = min(width / w, height / h)
            resized = cv2.resize(frame.image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC)
            canvas = np.zeros((height, width, 3), np.uint8)
            y0, x0 = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
            canvas[y0:y0 + resized.shape[0], x0:x0 + resized.shape[1]] = resized
            container.mux(stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")))
        container.mux(stream.encode())
    return out


def machine() -> str:
    """One line describing the machine the figures come from."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def cpu_flags() -> str:
    """The CPU's vector extensions relevant to training speed, from /proc/cpuinfo (for every published figure)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return " ".join(f for f in wanted if f in flags) or "none of avx2/avx512/amx"
