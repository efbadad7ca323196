"""Regenerate bench/data/device_faces.npz: real aligned GRID faces for `bench/device_check.sh`.

    python tools/make_device_faces.py            # needs the GRID clips in ../shared/data/grid

The device machine has only torch, numpy and safetensors (no PyAV, MediaPipe or dlib), so the faces its
end-to-end check trains on travel with the tree as one small array file: two identities (GRID speakers
of bbaf2n and pwij3p), 32 faces each, 64 px full-face crops aligned by the project's own extract.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT.parent / "shared" / "data" / "grid"
OUT = ROOT / "bench" / "data" / "device_faces.npz"
CLIPS = {"src": "bbaf2n.mpg", "dst": "pwij3p.mpg"}


def faces_of(clip: Path, size: int, count: int) -> np.ndarray:
    """`count` evenly spaced aligned faces (uint8 RGB, N×size×size×3) from one clip."""
    import cv2

    from facedouble.extract.pipeline import ExtractConfig, extract

    with tempfile.TemporaryDirectory() as tmp:
        extract(clip, tmp, ExtractConfig(size=size, face_type="full", every_nth=2, progress=False))
        files = sorted(Path(tmp).glob("*.png"))
        if len(files) < count:
            raise SystemExit(f"{clip.name}: only {len(files)} faces extracted, need {count}")
        pick = np.linspace(0, len(files) - 1, count).round().astype(int)
        return np.stack([cv2.cvtColor(cv2.imread(str(files[i])), cv2.COLOR_BGR2RGB) for i in pick])


def main() -> None:
    """Extract both identities and write the npz atomically."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--count", type=int, default=32)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from facedouble.io.atomic import atomic_write_bytes

    arrays = {name: faces_of(GRID / clip, args.size, args.count) for name, clip in CLIPS.items()}
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(args.out, buf.getvalue())
    print(f"wrote {args.out} ({len(buf.getvalue()) / 1024:.0f} KiB): "
          + ", ".join(f"{k} {v.shape}" for k, v in arrays.items()))


if __name__ == "__main__":
    main()
