"""Watermark benchmark: bit accuracy per attack, clip detection, visibility and cost, on real GRID clips.

Run: python -m bench.trust [--clips pwij3p,bbaf2n,swiz3n] [--frames 50] [--strength 1.0] [--keys 3]
                           [--starts 0] [--key-interval N] [--attacks crf28,...]

Bench-only knobs for the robustness runs: `--starts 0,1,2` marks N frames from each of these first frames
(more runs per key x clip: the key frames fall elsewhere), `--key-interval N` sets the watermark's
KEY_INTERVAL (1 = detector + landmarks on every frame), `--attacks` keeps the attacks whose name contains
one of the given strings (e.g. `--attacks "crf28 + resize"`).

The mark is keyed (facedouble.trust.watermark.WatermarkKey: the lattice dither and the whitening mask come
from the workspace's secret), so every figure is measured under `--keys` different keys (fixed test secrets
sha256("bench key i"), so a re-run is comparable) and the table pools keys x clips.

For each clip the first N frames are marked the way merge marks them (every frame, one track, the face box
from the extract stage's detector, merge's motion of the face passed along, so with KEY_INTERVAL > 1 the key
frames' alignment is carried between them; `--per-frame`: no motion, every frame aligned by the detector),
then attacked. Per attack it prints the mean per-frame bit accuracy
(each face's own hard bits under the clip's chosen alignment correction), whether the clip-level decision
recovers the payload, and the margin: the smallest averaged soft value of the 32 bits, signed so that
positive is right (1 = every frame clean, 0 = a coin toss). It prints the face-box PSNR of the marked
frames (mean and worst frame) and the RMS chroma (Cr/Cb) change there, and whether the unmarked clip
(plain, and CRF 28 + 50%) is reported as marked. Costs are per frame on one thread (detector,
landmarker, pattern).

Last run (2026-12-02, keyed mark, Intel Xeon (Sapphire Rapids class), 2 cores, AVX-512 BF16 + AMX, shared
with other jobs; default clips, 50 frames, 3 keys = 9 key x clip runs; bit acc/frame, runs found, smallest
margin):

    attack                    bit acc  found  margin
    lossless                  1.000    9/9    0.94
    h264 crf23                0.989    9/9    0.65
    h264 crf28                0.965    9/9    0.39
    jpeg q75                  1.000    9/9    0.88
    resize 50%                0.999    9/9    0.78
    crop 80% (off-centre)     1.000    9/9    0.88
    h264 crf28 + resize 50%   0.893    9/9   -0.00  (at least one run needed its one-bit CRC correction)
    unmarked reported         0/18 (3 clips, plain and crf28 + 50%, each under each of the 3 keys)
    face-box PSNR             41.7 dB (worst frame 40.5)
    RMS Cr/Cb change          0.02 levels (worst 0.07): the mark is luma only
    cost per frame (medians)  embed 36 ms, detect 27 ms + 5.8 ms (alignment search and vote)

Before the key (2026-12-01, one public dither, AVX2 EPYC): the same figures within noise (CRF 28 + 50%:
0.878, 3/3, margin -0.07; PSNR 41.7 / 40.5): keying moves the lattice, not the mark's energy or robustness.
The CRF 28 + 50% margin is thin: a weaker mark (--strength below 1) or a harder clip loses it first.

2026-12-07 (issue 19: detector near the face box, cheaper pattern, KEY_INTERVAL 1; same Xeon, load 8.5-11.8):
every attack 9/9; CRF 28 + 50% bit accuracy 0.894, margin +0.01; lossless margin 0.94; PSNR 41.7 dB (worst
40.5); unmarked 0/18. Worst case (--clips swiz3n --keys 2 --starts 0,1,2,3,4,5 --attacks "crf28 + resize"):
11/12 found (key 0 from frame 5 missed); key 1 only, KEY_INTERVAL 8 / 4 / 2 / 1: 3 / 5 / 5 / 6 of 6.
"""

from __future__ import annotations

import argparse
import functools
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from facedouble.extract.detectors import get_detector
from facedouble.io.video import open_source
from facedouble.trust import watermark as wm

GRID = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "grid"


def _h264(frames: list[np.ndarray], crf: int, scale: float = 1.0) -> list[np.ndarray]:
    import av
    import cv2

    h, w = frames[0].shape[:2]
    w2, h2 = int(w * scale) // 2 * 2, int(h * scale) // 2 * 2
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = w2, h2, "yuv420p"
        stream.options = {"crf": str(crf), "threads": "1"}
        for frame in frames:
            if scale != 1.0:
                frame = cv2.resize(frame, (w2, h2), interpolation=cv2.INTER_AREA)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    buf.seek(0)
    with av.open(buf) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _jpeg(frames: list[np.ndarray], quality: int) -> list[np.ndarray]:
    import cv2

    out = []
    for frame in frames:
        bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
        out.append(cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
    return out


def _resize(frames: list[np.ndarray], scale: float) -> list[np.ndarray]:
    import cv2

    h, w = frames[0].shape[:2]
    return [cv2.resize(f, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) for f in frames]


def _crop(frames: list[np.ndarray], keep: float) -> list[np.ndarray]:
    h, w = frames[0].shape[:2]
    y0, x0 = round(h * (1 - keep) / 2), round(w * (1 - keep) / 2) + 7  # off-centre: shifts the grid too
    return [np.ascontiguousarray(f[y0:y0 + round(h * keep), x0:x0 + round(w * keep)]) for f in frames]


def _visibility(frame: np.ndarray, marked: np.ndarray, box) -> tuple[float, float]:
    """(PSNR in dB, RMS Cr/Cb change in levels) over the face box."""
    import cv2

    x0, y0, x1, y1 = (int(round(v)) for v in box)
    a, b = frame[y0:y1, x0:x1], marked[y0:y1, x0:x1]
    mse = float(((a.astype(float) - b.astype(float)) ** 2).mean())
    chroma = (cv2.cvtColor(b, cv2.COLOR_RGB2YCrCb).astype(float)
              - cv2.cvtColor(a, cv2.COLOR_RGB2YCrCb).astype(float))[..., 1:]
    return 10 * np.log10(255.0**2 / max(mse, 1e-9)), float(np.sqrt((chroma**2).mean()))


@functools.cache
def _plan_faces(clip: str) -> dict:
    """The merge plan's faces of a GRID clip (its faceset extracted once, as `facedouble extract` does)."""
    import tempfile

    from facedouble.extract.pipeline import ExtractConfig, extract
    from facedouble.merge.pipeline import build_plan

    with tempfile.TemporaryDirectory(prefix=f"bench_trust_{clip}_") as folder:
        extract(GRID / f"{clip}.mpg", Path(folder), ExtractConfig(size=64, progress=False))
        return build_plan(Path(folder), 128, "full", 1.0, None).faces


def _merge_motions(clip: str, count: int) -> list:
    """Merge's frame -> aligned-crop transform of the face in each frame (what merge gives the watermark)."""
    faces = _plan_faces(clip)
    return [np.asarray(faces[i][0].to_aligned) if faces.get(i) else None for i in range(count)]


ATTACKS = {
    "lossless": lambda f: f,
    "h264 crf23": lambda f: _h264(f, 23),
    "h264 crf28": lambda f: _h264(f, 28),
    "jpeg q75": lambda f: _jpeg(f, 75),
    "resize 50%": lambda f: _resize(f, 0.5),
    "crop 80% (off-centre)": lambda f: _crop(f, 0.8),
    "h264 crf28 + resize 50%": lambda f: _h264(f, 28, 0.5),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", default="pwij3p,bbaf2n,swiz3n")
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--payload", type=int, default=40503)
    parser.add_argument("--strength", type=float, default=1.0, help="face-box budget scale (1.0: the default)")
    parser.add_argument("--keys", type=int, default=3, help="watermark keys to measure under")
    parser.add_argument("--starts", default="0", help="first frames of the marked excerpts (comma list)")
    parser.add_argument("--key-interval", type=int, default=None,
                        help="bench only: watermark.KEY_INTERVAL for this run (default: the code's)")
    parser.add_argument("--attacks", default=None, help="only the attacks whose name contains one of these (comma)")
    parser.add_argument("--per-frame", action="store_true",
                        help="align every frame with the detector (default: key frames carried by merge's motion)")
    args = parser.parse_args(argv)
    if args.key_interval is not None:
        if args.key_interval < 1:
            parser.error("--key-interval must be >= 1")
        wm.KEY_INTERVAL = args.key_interval
    attacks = {name: attack for name, attack in ATTACKS.items()
               if args.attacks is None or any(part in name for part in args.attacks.split(","))}
    if not attacks:
        parser.error(f"no attack matches {args.attacks!r}")
    if not GRID.is_dir():
        print(f"GRID footage not found at {GRID}", file=sys.stderr)
        return 2
    embed_cost, observe_cost, decide_cost = [], [], []
    results: dict[str, list[tuple[float, bool, float]]] = {name: [] for name in attacks}
    clean_hits = clean_runs = 0
    detector = get_detector("retinaface")
    psnrs, chromas = [], []
    import hashlib

    keys = [wm.WatermarkKey.from_secret(hashlib.sha256(f"bench key {i}".encode()).digest()) for i in range(args.keys)]
    starts = [int(v) for v in args.starts.split(",")]
    runs = [(key, clip, first) for key in keys for clip in args.clips.split(",") for first in starts]
    for key, clip, first in runs:
        bits = wm.encode_payload(args.payload, key)
        frames = [f.image for f in open_source(GRID / f"{clip}.mpg")][first: first + args.frames]
        motions = [None] * len(frames) if args.per_frame else _merge_motions(clip, first + len(frames))[first:]
        marker = wm.Watermarker(args.payload, key, fps=25.0, strength=args.strength)
        marked = []
        for i, frame in enumerate(frames):
            box = detector.detect(frame)[0].box
            start = time.perf_counter()
            marked.append(marker.embed(frame, box, frame_index=i, motion=motions[i]))
            embed_cost.append(time.perf_counter() - start)
            psnr, chroma = _visibility(frame, marked[-1], box)
            psnrs.append(psnr)
            chromas.append(chroma)
        for name, attack in attacks.items():
            attacked = attack(marked)
            lumas = []
            for frame in attacked:
                start = time.perf_counter()
                lumas += wm.observe(frame)
                observe_cost.append(time.perf_counter() - start)
            start = time.perf_counter()
            result = wm.decide(lumas, len(attacked), key)
            decide_cost.append((time.perf_counter() - start) / len(attacked))
            soft = wm._best_alignment(np.array(lumas), key) if lumas else np.zeros((1, 32))
            sign = np.where(bits > 0.5, -1.0, 1.0)
            accuracy = float(((soft * sign) > 0).mean())
            results[name].append((accuracy, result.found and result.payload == args.payload,
                                  float((soft.mean(0) * sign).min())))
            if len(attacks) == 1 or args.starts != "0":  # the robustness runs: one line per run
                print(f"  {name}: key {keys.index(key)} {clip} from frame {first}: accuracy {accuracy:.3f}, "
                      f"found {results[name][-1][1]}, margin {results[name][-1][2]:.2f}", flush=True)
        for clean in (frames, _h264(frames, 28, 0.5)) if args.attacks is None else ():  # --attacks: skipped
            clean_hits += wm.detect_frames(clean, key).found
            clean_runs += 1
    from bench.common import machine

    per_frame = args.per_frame or wm.KEY_INTERVAL == 1

    print(f"watermark benchmark: clips {args.clips}, {args.frames} frames each, payload {args.payload}, "
          f"strength {args.strength}, {args.keys} keys, starts {args.starts} ({len(runs)} key x clip x start runs), "
          f"alignment {'every frame' if per_frame else f'key frames 1 in {wm.KEY_INTERVAL}'}; {machine()}")
    print(f"{'attack':<26} {'bit acc/frame':>13} {'runs found':>12} {'margin':>7}")
    for name, rows in results.items():
        acc = statistics.mean(r[0] for r in rows)
        print(f"{name:<26} {acc:>13.3f} {sum(r[1] for r in rows):>7}/{len(rows)} {min(r[2] for r in rows):>9.2f}")
    print(f"unmarked clips reported as marked (plain, crf28 + 50%; each under each key): {clean_hits}/{clean_runs}")
    print(f"face-box PSNR {statistics.mean(psnrs):.1f} dB (worst frame {min(psnrs):.1f}), "
          f"RMS chroma change {statistics.mean(chromas):.2f} levels (worst {max(chromas):.2f})")
    print(f"cost per frame (1 thread, medians): embed {1000 * statistics.median(embed_cost):.0f} ms (detector + "
          f"landmarks + pattern), detect {1000 * statistics.median(observe_cost):.0f} ms (detector + landmarks) + "
          f"{1000 * statistics.median(decide_cost):.1f} ms (alignment search and vote)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
