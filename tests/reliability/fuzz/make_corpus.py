"""Write the fuzz seed corpus (tests/reliability/corpus/) from one real GRID frame.

Run once (`python -m tests.reliability.fuzz.make_corpus`); the files are small and committed. Seeds are
valid inputs of each reader, so mutations start from deep inside the formats.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import av
import cv2
import numpy as np

from tests.conftest import grid_path
from tests.reliability.fuzz.harness import CORPUS


def _frames(n: int = 3, size: tuple[int, int] = (32, 24)) -> list[np.ndarray]:
    from facedouble.io.video import open_source

    image = next(iter(open_source(grid_path("bbaf2n")))).image
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return [np.ascontiguousarray(np.roll(small, 2 * i, axis=1)) for i in range(n)]


def _clip(path: Path, codec: str, fmt: str | None = None, pix_fmt: str = "yuv420p", n: int = 3,
          options: dict[str, str] | None = None) -> None:
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=25)
        frames = _frames(n)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], pix_fmt
        stream.options = options or {}
        for image in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format=pix_fmt)))
        out.mux(stream.encode())


def _face_meta() -> str:
    rng = np.random.default_rng(16)
    lm = (rng.random((68, 2)) * 16).round(3).tolist()
    return json.dumps({
        "version": 2, "source": "clip.mp4", "frame_index": 3, "timestamp": 0.12, "track_id": 0, "face_type": "full",
        "size": 16, "frame_size": [32, 24], "landmarks": lm, "aligned_landmarks": lm,
        "transform": [[0.5, 0, 1], [0, 0.5, 2]], "inverse": [[2, 0, -2], [0, 2, -4]], "detector": "retinaface",
        "score": 0.99, "mesh": lm[:5], "embedding": [0.1] * 8, "interpolated": False, "identity": None,
        "labels": None}, separators=(",", ":"))


def main() -> None:
    """(Re)write every seed file."""
    from facedouble.io import imagemeta

    frame = _frames(1, (16, 16))[0]
    ok, png = cv2.imencode(".png", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    ok2, jpg = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 60])
    assert ok and ok2
    png, jpg = png.tobytes(), jpg.tobytes()
    meta = _face_meta()
    files: dict[str, bytes] = {
        "imagemeta/face.png": imagemeta.set_text(png, "facedouble.face", meta),
        "imagemeta/face.jpg": imagemeta.set_text(jpg, "facedouble.face", meta),
        "faceset/face.png": imagemeta.set_text(png, "facedouble.face", meta),
        "faceset/meta.json": meta.encode(),
        "overrides/fix.toml": b'[[override]]\nframes = "120-180"\ncolour = "lct"\nerode = 4\n\n'
                              b'[[override]]\nframes = "300-"\nblend = "poisson"\nscale = 1.1\nmask = "hull"\n',
        "overrides/fix.json": b'{"override": [{"frames": "5", "blur": 3.5, "sharpen": 0.5}]}',
        "config/extract.toml": b'face_type = "whole"\nsize = 128\nimage_format = "jpg"\ndetect_every = 4\n'
                               b'max_gap = 3\nlandmark_smooth = 1.5\nreference = "ref.jpg"\ndebug = true\n',
        "config/merge.toml": b'colour = "mkl"\nerode = 2.0\nbatch = 8\nsegment_frames = 25\ncrf = 20\n'
                             b'x264_preset = "fast"\ntransform_smooth = 0.5\n',
        "consent/record.json": json.dumps({"name": "jane", "release_sha256": "ab" * 32, "release_path": "/x.pdf",
                                           "scope": "Feature X", "created": "2026-01-02", "expires": "2099-12-31",
                                           "notes": "", "version": 1}).encode(),
        "consent/binding.json": json.dumps({"version": 1, "identity": "jane", "record_hash": "cd" * 32}).encode(),
        "consent/revocation.json": json.dumps({"name": "jane", "record_hash": "cd" * 32, "revoked": "2026-05-01",
                                               "reason": "withdrawn"}).encode(),
        "png/frame.png": png,
        "jpg/frame.jpg": jpg,
    }
    # a compressed iTXt variant, as other PNG writers store text
    body = b"k\x00\x01\x00en\x00\x00" + zlib.compress(meta.encode())
    chunk = len(body).to_bytes(4, "big") + b"iTXt" + body + zlib.crc32(b"iTXt" + body).to_bytes(4, "big")
    iend = png.rindex(b"IEND") - 4
    files["imagemeta/compressed.png"] = png[:iend] + chunk + png[iend:]
    for rel, data in files.items():
        (CORPUS / rel).parent.mkdir(parents=True, exist_ok=True)
        (CORPUS / rel).write_bytes(data)
    for family, codec, fmt, pix, opts in (
            ("mp4", "libx264", "mp4", "yuv420p", {"threads": "1", "bf": "2"}),
            ("mkv", "libx264", "matroska", "yuv420p", {"threads": "1"}),
            ("mpg", "mpeg2video", "mpeg", "yuv420p", {}),
            ("exr", "exr", "image2", "gbrpf32le", {})):
        (CORPUS / family).mkdir(parents=True, exist_ok=True)
        name = "frame.exr" if family == "exr" else f"clip.{family}"
        _clip(CORPUS / family / name, codec, fmt, pix, n=1 if family == "exr" else 3, options=opts)


if __name__ == "__main__":
    main()
