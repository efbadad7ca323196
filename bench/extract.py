"""Extraction benchmark: frames/s on the GRID clips at native size (360x288) and upscaled to 1280x720.

The clips are joined into one video per size (9 x 75 = 675 frames, cuts between speakers included), so
model loading is amortised as on real footage; load time is reported apart. Each run is a fresh
process, so peak memory is per run. Usage: python -m bench.extract [--clips N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import grid_clips, machine, upscaled_clip

RUN = """
import json, resource, sys, time
from facedouble.extract.pipeline import ExtractConfig, _Tracker, extract
from facedouble.extract.identity import IdentityEmbedder
t = time.perf_counter()
_Tracker(ExtractConfig()).mesher.close(); IdentityEmbedder()
load = time.perf_counter() - t
t = time.perf_counter()
report = extract(sys.argv[1], sys.argv[2], ExtractConfig(progress=False))
seconds = time.perf_counter() - t
print(json.dumps({"frames": report.frames_read, "faces": report.faces_written, "seconds": seconds,
                  "load": load, "missing": len(report.frames_without_face), "tracks": len(report.tracks),
                  "cuts": report.shot_cuts, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_once(clip: Path, out: Path) -> dict:
    """Extract `clip` in a fresh interpreter; returns its figures."""
    proc = subprocess.run([sys.executable, "-c", RUN, str(clip), str(out)], capture_output=True, text=True,
                          check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    """Print a Markdown table of extraction speed and memory."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=9, help="how many GRID clips to join (default all 9)")
    args = parser.parse_args()
    clips = grid_clips()[: args.clips]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        for label, size in (("360x288 (native)", (360, 288)), ("1280x720 (upscaled)", (1280, 720))):
            joined = upscaled_clip(clips, tmp_path / f"grid_{size[1]}p.mp4", size)
            rows.append((label, run_once(joined, tmp_path / f"out_{size[1]}")))
    print(f"Extraction, {machine()}, {time.strftime('%Y-%m-%d %H:%M')}, {len(clips)} GRID clips joined")
    print("| footage | frames | faces | frames without face | cuts found | tracks | frames/s | model load s "
          "| peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, f in rows:
        print(f"| {label} | {f['frames']} | {f['faces']} | {f['missing']} | {f['cuts']} | {f['tracks']} | "
              f"{f['frames'] / f['seconds']:.1f} | {f['load']:.1f} | {f['peak_mib']:.0f} |")


if __name__ == "__main__":
    main()
