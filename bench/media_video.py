"""4K video merge benchmark (issue 15): peak memory and frames/s of a merge at 3840x2160 on the CPU.

The plate is a real GRID clip upscaled (letterboxed) to 3840x2160 and encoded as 10-bit ProRes 422 HQ with a
timecode and its audio; its faces are extracted once (that time is not counted), then merged with the
stand-in model (tests/standin.py ShiftSwapper: the swap costs nothing, so the figures are merge's own
decode, composite, trust hooks off, and encode) into ProRes 4444 with the change matte as alpha, and into
H.264 8-bit and PNG frames + RGBA patches for comparison. Each merge runs in a fresh child process (its
figures include start-up: imports, plan, encoder process) after `tune_process()` as the CLI; peak memory is
that process's ru_maxrss, the encoder child's the largest of its resident sizes sampled every second (its
ru_maxrss counts the parent's pages it was forked with), and the sampled resident memory is printed at each
quarter of the run (flat = bounded); CPU time is both processes' user + system
time (steadier than wall time on shared cores).

Usage: python -m bench.media_video [--frames 12] [--size 3840x2160] [--codecs prores-4444,h264]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import ROOT, grid_clips, machine


def make_plate(out: Path, frames: int, size: tuple[int, int]) -> Path:
    """The first `frames` frames of a GRID clip, letterboxed to `size`, as 10-bit ProRes 422 HQ with timecode."""
    import av
    import cv2

    from facedouble.io.video import open_source

    width, height = size
    with av.open(str(out), "w") as container:
        stream = container.add_stream("prores_ks", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv422p10le"
        stream.codec_context.profile = "HQ"
        stream.metadata["timecode"] = "01:00:00:00"
        for frame in open_source(grid_clips()[0]):
            if frame.index >= frames:
                break
            h, w = frame.image.shape[:2]
            scale = min(width / w, height / h)
            resized = cv2.resize(frame.image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC)
            canvas = np.zeros((height, width, 3), np.uint16)
            y0, x0 = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
            canvas[y0:y0 + resized.shape[0], x0:x0 + resized.shape[1]] = resized.astype(np.uint16) * 257
            video = av.VideoFrame.from_ndarray(canvas, format="rgb48le").reformat(
                format="yuv422p10le", dst_colorspace=1, dst_color_range=1)
            video.pts = frame.index
            container.mux(stream.encode(video))
        container.mux(stream.encode())
    return out


CHILD = r"""
import json, os, resource, sys, threading, time
from pathlib import Path

def rss_mb(pid):
    try:
        with open(f"/proc/{{pid}}/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0

def children():
    found = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{{name}}/stat") as handle:
                if int(handle.read().rsplit(")", 1)[1].split()[1]) == os.getpid():
                    found.append(int(name))
        except (OSError, ValueError, IndexError):
            pass
    return found

samples = []  # (seconds, merge RSS, encoder RSS): memory over the run, to see it stay flat

def sample():
    t0 = time.perf_counter()
    while True:
        samples.append((time.perf_counter() - t0, rss_mb(os.getpid()), sum(rss_mb(c) for c in children())))
        time.sleep(1.0)

threading.Thread(target=sample, daemon=True).start()
sys.path.insert(0, {root!r})
from facedouble.runtime import tune_process
tune_process()  # as the CLI does (heap reuse, OpenMP spin count)
from facedouble.merge.pipeline import MergeConfig, Outputs
from tests.standin import ShiftSwapper, merge_unmarked
out = Path({out!r})
outputs = Outputs(video=out) if {codec!r} != "patches" else Outputs(png_dir=out, patch_dir=out / "patches")
config = MergeConfig(codec={codec!r} if {codec!r} != "patches" else "h264", colour="none", segment_frames=50)
t0 = time.perf_counter()
result = merge_unmarked(ShiftSwapper(256), Path({faceset!r}), outputs, config, clip=Path({clip!r}), progress=False)
seconds = time.perf_counter() - t0
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
# the encoder's peak from the samples: a child's ru_maxrss counts the parent's pages it was forked with
print(json.dumps({{"frames": result.frames, "seconds": seconds, "rss_mb": me.ru_maxrss / 1024,
                  "encoder_rss_mb": max([e for _, _, e in samples] or [0.0]),
                  "cpu_s": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime, "samples": samples}}))
"""


def run_merge(faceset: Path, clip: Path, out: Path, codec: str) -> dict:
    """One merge in a fresh process: frames, seconds, peak RSS (merge process, encoder process) in MB."""
    code = CHILD.format(root=str(ROOT), out=str(out), codec=codec, faceset=str(faceset), clip=str(clip))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"merge failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--size", default="3840x2160")
    parser.add_argument("--codecs", default="prores-4444,h264,patches")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    from facedouble.extract.pipeline import ExtractConfig, extract

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        plate = make_plate(tmp / "plate.mov", args.frames, size)
        t1 = time.perf_counter()
        extract(plate, tmp / "faces", ExtractConfig(size=128, progress=False))
        t2 = time.perf_counter()
        print(f"# {machine()}")
        print(f"# plate {size[0]}x{size[1]} ProRes 422 HQ 10-bit, {args.frames} frames (made in {t1 - t0:.0f} s, "
              f"extracted in {t2 - t1:.0f} s)")
        print("| output | frames/s (wall) | CPU s/frame (all processes) | peak RSS merge | peak RSS encoder |")
        print("|---|---|---|---|---|")
        for codec in args.codecs.split(","):
            suffix = ".mov" if codec.startswith(("prores", "dnxhr")) else ".mp4"
            out = tmp / (f"out_{codec}{suffix}" if codec != "patches" else "out_png")
            figures = run_merge(tmp / "faces", plate, out, codec)
            label = codec if codec != "patches" else "PNG frames + RGBA patches"
            print(f"| {label} | {figures['frames'] / figures['seconds']:.2f} | "
                  f"{figures['cpu_s'] / figures['frames']:.1f} | {figures['rss_mb']:.0f} MB | "
                  f"{figures['encoder_rss_mb']:.0f} MB |", flush=True)
            trace = figures["samples"]
            if trace:  # resident memory at each quarter of the run: flat = bounded
                picks = [trace[min(len(trace) - 1, round(q * (len(trace) - 1)))] for q in (0.25, 0.5, 0.75, 1.0)]
                print("#   RSS merge/encoder at 1/4, 1/2, 3/4, end of the run: " + ", ".join(
                    f"{m:.0f}/{e:.0f} MB" for _, m, e in picks), flush=True)


if __name__ == "__main__":
    main()
