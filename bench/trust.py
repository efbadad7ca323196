"""Watermark benchmark: bit accuracy per attack and per-frame cost, on real GRID clips.

Run: PYTHONPATH=. python bench/trust.py [--clips pwij3p,bbaf2n,swiz3n] [--frames 50]

For each clip the first N frames are marked the way merge marks them (RivaGAN on key frames, residual
carried between them), then attacked. Per attack it prints the mean per-frame bit accuracy (each frame
decoded on its own, against the word its block carries) and whether the clip-level vote recovers the
payload. It also prints the face-box PSNR of the marked frames (mean and worst frame) and the RMS chroma
(Cr/Cb) change there: the visibility side of the trade-off. Embed/decode costs are per frame with RivaGAN
on one CPU thread; the face detector is the extract stage's (get_detector("retinaface"), 2 threads).

Last run (2026-11-24, shared 2-core machine, default clips, 50 frames; bit acc/frame, clips found of 3):

    attack                    default gain (5x on GRID)   --strength 1.5
    lossless                  0.969  3/3                  0.902  3/3
    h264 crf23                0.967  3/3                  0.841  3/3
    h264 crf28                0.964  3/3                  0.746  1/3
    jpeg q75                  0.967  3/3                  0.885  3/3
    resize 50%                0.944  3/3                  0.863  2/3
    crop 80% (off-centre)     0.928  3/3                  0.831  2/3
    h264 crf28 + resize 50%   0.893  2/3 (*)             0.578  0/3
    unmarked reported         0/3                         0/3
    face-box PSNR             28.9 dB (worst 28.8)        39.3 dB (worst 39.2)
    RMS Cr/Cb change          6.9 levels                  2.2 levels

(*) borderline: the pre-change code (identical embedding, checked frame by frame) gave 3/3 on one run
and 2/3 (0.900) on another; swiz3n alone was found on both. Runs differ slightly (per-frame accuracy
moves in the third decimal), so one clip is at the edge of the vote at the default gain.
Cost per frame: key frame embed ~170 ms, carried frame ~1 ms, detect ~160 ms (detector + decoder).
The default gain is robust but VISIBLE (chroma mottle); the gain near 40 dB does not survive CRF 28.
"""

from __future__ import annotations

import argparse
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


def _area(box) -> float:
    return float((box[2] - box[0]) * (box[3] - box[1]))


def _visibility(frame: np.ndarray, marked: np.ndarray, box) -> tuple[float, float]:
    """(PSNR in dB, RMS Cr/Cb change in levels) over the face box."""
    import cv2

    x0, y0, x1, y1 = (int(round(v)) for v in box)
    a, b = frame[y0:y1, x0:x1], marked[y0:y1, x0:x1]
    mse = float(((a.astype(float) - b.astype(float)) ** 2).mean())
    chroma = (cv2.cvtColor(b, cv2.COLOR_RGB2YCrCb).astype(float)
              - cv2.cvtColor(a, cv2.COLOR_RGB2YCrCb).astype(float))[..., 1:]
    return 10 * np.log10(255.0**2 / max(mse, 1e-9)), float(np.sqrt((chroma**2).mean()))


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
    parser.add_argument("--strength", type=float, default=None, help="residual gain (default: strength_for)")
    args = parser.parse_args(argv)
    if not GRID.is_dir():
        print(f"GRID footage not found at {GRID}", file=sys.stderr)
        return 2
    marker_cost, carry_cost, detect_cost = [], [], []
    results: dict[str, list[tuple[float, bool]]] = {name: [] for name in ATTACKS}
    clean_hits = 0
    detector = get_detector("retinaface")
    psnrs, chromas = [], []
    for clip in args.clips.split(","):
        frames = [f.image for f in open_source(GRID / f"{clip}.mpg")][: args.frames]
        marker = wm.Watermarker(args.payload, fps=25.0, strength=args.strength)
        step = max(1, round(25.0 / wm.KEYS_PER_SECOND))
        marked = []
        for i, frame in enumerate(frames):
            box = detector.detect(frame)[0].box
            start = time.perf_counter()
            marked.append(marker.embed(frame, box, frame_index=i))
            (marker_cost if i % step == 0 else carry_cost).append(time.perf_counter() - start)
            psnr, chroma = _visibility(frame, marked[-1], box)
            psnrs.append(psnr)
            chromas.append(chroma)
        expected = [marker.bits if (i // step) % 2 == 0 else 1 - marker.bits for i in range(len(frames))]
        for name, attack in ATTACKS.items():
            attacked = attack(marked)
            accs, observations = [], []
            for i, frame in enumerate(attacked):
                start = time.perf_counter()
                faces = detector.detect(frame)
                if not faces:
                    continue
                logits = wm.decode_logits(frame, max(faces, key=lambda d: _area(d.box)).box)
                detect_cost.append(time.perf_counter() - start)
                observations.append((i, logits))
                accs.append(float(((logits > 0) == (expected[i] > 0.5)).mean()))
            result = wm._vote(observations, 2, len(attacked))
            results[name].append((statistics.mean(accs) if accs else 0.0,
                                  result.found and result.payload == args.payload))
        clean = wm.detect_frames(_h264(frames, 28, 0.5))
        clean_hits += clean.found
    gain = "strength_for(box)" if args.strength is None else args.strength
    print(f"watermark benchmark: clips {args.clips}, {args.frames} frames each, payload {args.payload}, "
          f"gain {gain}")
    print(f"{'attack':<26} {'bit acc/frame':>13} {'clips found':>12}")
    for name, rows in results.items():
        acc = statistics.mean(r[0] for r in rows)
        print(f"{name:<26} {acc:>13.3f} {sum(r[1] for r in rows):>7}/{len(rows)}")
    print(f"unmarked clips reported as marked (crf28 + 50%): {clean_hits}/{len(results['lossless'])}")
    print(f"face-box PSNR {statistics.mean(psnrs):.1f} dB (worst frame {min(psnrs):.1f}), "
          f"RMS chroma change {statistics.mean(chromas):.2f} levels (worst {max(chromas):.2f})")
    print(f"cost per frame (RivaGAN 1 thread): key frame embed {1000 * statistics.mean(marker_cost):.0f} ms "
          f"(RivaGAN + detector), carried frame {1000 * statistics.mean(carry_cost):.1f} ms, "
          f"detect {1000 * statistics.mean(detect_cost):.0f} ms (detector + decoder)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
