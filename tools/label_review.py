"""Contact sheets of mask labels for review (tools/label_review.py).

Each tile is one face with its label drawn: include outline green, excluded area tinted red, and the
tile's key (clip, frame) written in the corner. With --grid, faint lines every 32 px of the 256 px face
help read coordinates off the picture when a polygon needs correcting.

    python tools/label_review.py LABELS.json FACESETS_ROOT OUT_DIR [--only CLIP] [--tile 160] [--cols 8]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from facedouble.faceset import read_face
from facedouble.faceset.labels import FaceLabels
from facedouble.mask.labels import label_mask


def tile(img: np.ndarray, entry: dict, size: int, grid: bool, text: str) -> np.ndarray:
    """One overlay tile."""
    n = img.shape[0]
    labels = FaceLabels.from_dict({"include": entry["include"], "exclude": entry["exclude"]}, size=n)
    mask = label_mask(labels, n)
    out = img.astype(np.float32)
    inside = FaceLabels.from_dict({"include": entry["include"], "exclude": []}, size=n)
    cut = label_mask(inside, n) * (1 - mask)
    out[cut > 0] = out[cut > 0] * 0.45 + np.array([255, 0, 0]) * 0.55
    out = np.clip(out, 0, 255).astype(np.uint8)
    if grid:
        for v in range(32, n, 32):
            out[v, :] = out[v, :] // 2 + 100
            out[:, v] = out[:, v] // 2 + 100
    edges = cv2.Canny((mask * 255).astype(np.uint8), 50, 150) > 0
    out[edges] = (0, 255, 0)
    out = cv2.resize(out, (size, size), interpolation=cv2.INTER_AREA)
    cv2.putText(out, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 0), 1, cv2.LINE_AA)
    return out


def main() -> int:
    """CLI entry."""
    ap = argparse.ArgumentParser()
    ap.add_argument("labels")
    ap.add_argument("root", help="folder holding the facesets (searched recursively for the face files)")
    ap.add_argument("out")
    ap.add_argument("--only", help="clip name prefix")
    ap.add_argument("--names", help="comma-separated face names")
    ap.add_argument("--tile", type=int, default=160)
    ap.add_argument("--cols", type=int, default=8)
    ap.add_argument("--rows", type=int, default=6)
    ap.add_argument("--grid", action="store_true")
    args = ap.parse_args()
    raw = json.loads(Path(args.labels).read_text())
    faces = raw.get("faces", raw)
    files = {p.name: p for p in Path(args.root).rglob("*.png") if "_" in p.name}
    names = sorted(n for n in faces if n in files and (not args.only or n.startswith(args.only)))
    if args.names:
        names = [n for n in args.names.split(",") if n in faces]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    per = args.cols * args.rows
    for s in range(0, len(names), per):
        tiles = []
        for name in names[s:s + per]:
            img, _ = read_face(files[name])
            stem = name.rsplit("_", 3)
            tiles.append(tile(img, faces[name], args.tile, args.grid, f"{stem[0][:7]} {int(stem[2])}"))
        while len(tiles) % args.cols:
            tiles.append(np.zeros_like(tiles[0]))
        rows = [np.hstack(tiles[r:r + args.cols]) for r in range(0, len(tiles), args.cols)]
        sheet = np.vstack(rows)
        cv2.imwrite(str(out / f"sheet_{s // per:02d}.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f"{len(names)} faces in {(len(names) + per - 1) // per} sheet(s) in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
