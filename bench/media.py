"""Finishing media benchmark. Parts (`--only NAME[,NAME]`):

* `seq`: EXR read and write per frame at 1920x1080 and 3840x2160 (half RGBA, zip, OpenImageIO), the OCIO
  ACEScg -> working-space conversion a frame costs on reading, and the sequence writer's whole per-frame
  cost (re-read the plate, put the changed pixels back in ACEScg, write half EXR with the matte). Plates are
  a real GRID frame upscaled and converted to ACEScg; a face-sized square (1/5 of the frame) is "changed".

Each figure is the median of `--repeat` runs (default 5) after one warm-up, in one process: wall time and
CPU time (all threads; OpenImageIO and OCIO use several).
Usage: python -m bench.media [--only seq] [--repeat N] [--sizes 1920x1080,3840x2160]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.common import grid_clips, machine


def _median_ms(fn: Callable[[], object], repeat: int) -> str:
    """'wall / CPU ms' medians: CPU time (all threads of this process) moves less than wall time when the
    cores are shared with other jobs."""
    fn()  # warm-up
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return f"{statistics.median(wall) * 1000:.0f} / {statistics.median(cpu) * 1000:.0f} ms"


def _plate(width: int, height: int) -> np.ndarray:
    """A real GRID frame upscaled to width x height, as ACEScg float32."""
    import cv2

    from facedouble.io.ocio import ColourConverter
    from facedouble.io.video import open_source

    image = next(iter(open_source(grid_clips()[0]))).image
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC)
    return ColourConverter("ACEScg").to_plate(image.astype(np.float32) / 255.0)


def bench_seq(repeat: int, sizes: list[tuple[int, int]]) -> list[str]:
    """EXR read/write, OCIO and sequence-writer figures per frame; table rows in markdown."""
    from facedouble.io.ocio import ColourConverter
    from facedouble.io.sequence import Plate, read_plate
    from facedouble.io.video import open_source
    from facedouble.merge.seqwriters import SequenceOutput, write_exr

    rows = ["| size (wall / CPU per frame) | EXR write (half RGBA, zip) | EXR read (float32) | "
            "OCIO ACEScg -> working, 8-bit | sequence writer (read + compose + write) | EXR size |",
            "|---|---|---|---|---|---|"]
    conv = ColourConverter("ACEScg")
    for width, height in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "plate"
            folder.mkdir()
            rgb = _plate(width, height).astype(np.float16).astype(np.float32)
            matte = np.zeros((height, width), np.float32)
            plate = Plate(rgb, None, "half", 16, {"oiio:ColorSpace": ("string", "ACEScg")})
            path = folder / "shot.1001.exr"
            write_ms = _median_ms(lambda: write_exr(path, rgb, matte, plate), repeat)  # noqa: B023
            write_exr(folder / "shot.1002.exr", rgb, matte, plate)
            read_ms = _median_ms(lambda: read_plate(path), repeat)  # noqa: B023
            ocio_ms = _median_ms(lambda: conv.working_uint8(rgb), repeat)  # noqa: B023
            source = open_source(folder)
            target = next(iter(source)).image
            rendered = target.copy()
            s = min(width, height) // 5
            y0, x0 = height // 3, width // 2 - s // 2
            rendered[y0:y0 + s, x0:x0 + s] = 255 - rendered[y0:y0 + s, x0:x0 + s]  # the "face"
            alpha = np.zeros((height, width), np.float32)
            alpha[y0:y0 + s, x0:x0 + s] = 1.0
            writer = SequenceOutput(Path(tmp) / "out" / "shot.%04d.exr", source)
            seq_ms = _median_ms(lambda: writer.write(0, rendered, target, alpha), repeat)  # noqa: B023
            size_mb = path.stat().st_size / 1e6
        rows.append(f"| {width}x{height} | {write_ms} | {read_ms} | {ocio_ms} | {seq_ms} | {size_mb:.1f} MB |")
    return rows


PARTS = {"seq": bench_seq}


def main(argv: list[str] | None = None) -> int:
    """Run the chosen parts and print markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(PARTS), help=f"parts to run, of: {', '.join(PARTS)}")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sizes", default="1920x1080,3840x2160")
    args = parser.parse_args(argv)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    load = os.getloadavg()[0]
    print(f"machine: {machine()}; load average {load:.1f} at start; one process, median of {args.repeat} "
          "after a warm-up")
    for name in args.only.split(","):
        if name not in PARTS:
            print(f"unknown part {name!r} (have: {', '.join(PARTS)})", file=sys.stderr)
            return 2
        print(f"\n### {name}\n")
        print("\n".join(PARTS[name](args.repeat, sizes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
