"""Hostile and odd media (issue 16, item 4): each gives its documented behaviour through the one frame
reader (facedouble.io.video) and through `facedouble extract`.

Valid media (one frame, variable frame rate, interlaced MPEG-2, paths with spaces and non-ASCII
characters) is extracted with sensible timestamps; invalid media (empty file, 16k x 16k PNG, audio only,
corrupt packets) ends in a one-line InputError, exit code 3, and no faceset. All media is made here from
a few real GRID frames, never committed.
"""

from __future__ import annotations

import struct
import wave
import zlib
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from facedouble.cli import main
from facedouble.errors import InputError
from facedouble.faceset import Faceset
from facedouble.io.video import open_source
from tests.footage import frames_of, write_clip

STEM = "bbaf2n"


@pytest.fixture(scope="module")
def images(grid_clip) -> list[np.ndarray]:
    """Six real GRID frames (360x288 RGB)."""
    return frames_of(grid_clip(STEM), 6)


def _extract(clip: Path, out: Path, capsys) -> tuple[int, str]:
    code = main(["extract", str(clip), str(out), "--size", "64", "--no-progress"])
    return code, capsys.readouterr().err.strip()


def _assert_refused(clip: Path, tmp_path: Path, capsys, match: str) -> None:
    with pytest.raises(InputError, match=match):
        src = open_source(clip)
        list(src)
    out = tmp_path / f"out_{clip.stem}"
    code, err = _extract(clip, out, capsys)
    assert code == InputError.exit_code
    assert err.count("\n") == 0 and "Traceback" not in err and clip.name in err
    assert not list(out.glob("*.png")) if out.exists() else True


def _timestamps(out: Path) -> list[float]:
    return sorted(meta.timestamp for _, meta in Faceset(out).metas())


# -- refused -----------------------------------------------------------------------------------------

def test_empty_file_is_refused(tmp_path, capsys):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    _assert_refused(empty, tmp_path, capsys, "empty")


def _huge_png(path: Path) -> Path:
    """A tiny valid 1x1 PNG whose IHDR (CRC fixed up) announces 16384x16384: 768 MiB of RGB if decoded."""
    ok, data = cv2.imencode(".png", np.zeros((1, 1, 3), np.uint8))
    data = bytearray(data.tobytes())
    assert ok and data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", 16384, 16384)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def test_16k_png_is_refused_from_its_header(tmp_path, capsys, monkeypatch):
    # cv2.imdecode must never be reached: the header check refuses first
    folder = tmp_path / "stills"
    folder.mkdir()
    png = _huge_png(folder / "huge.png")
    monkeypatch.setattr(cv2, "imdecode", lambda *a: pytest.fail("decoded a 16k x 16k image"))
    _assert_refused(folder, tmp_path, capsys, "16384x16384.*refused before decoding")
    monkeypatch.undo()
    # the same file given directly (FFmpeg's image demuxer would allocate it on decoding): refused from
    # its header as well (this failed before: "Invalid data found ... (after 0 frames)")
    _assert_refused(png, tmp_path, capsys, "16384x16384.*refused before decoding")


def test_audio_only_file_is_refused(tmp_path, capsys):
    audio = tmp_path / "speech.wav"
    with wave.open(str(audio), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16000)
        handle.writeframes(b"\0\0" * 1600)
    _assert_refused(audio, tmp_path, capsys, "no video stream")


def _corrupt(clip: Path, name: str) -> Path:
    """A copy of `clip` with 4 kB of noise over the middle of its packets."""
    data = bytearray(clip.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4000] = np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    bad = clip.with_name(name)
    bad.write_bytes(bytes(data))
    return bad


def test_corrupt_packets_mid_stream(tmp_path, images, capsys):
    # What the reader does is what FFmpeg reports. Where the damage surfaces as a decode error (MP4: the
    # sample table points into the noise), the reader stops with a one-line InputError naming the frame
    # count and extract removes the faces of the readable part, as for a truncated clip: no silently
    # incomplete faceset. Where FFmpeg resynchronises and conceals it (MPEG-TS, built for lossy links),
    # the damaged frames are dropped and the rest is read in order with its own timestamps.
    bad = _corrupt(write_clip(tmp_path / "ok.mp4", images * 4), "corrupt.mp4")
    with pytest.raises(InputError, match=r"corrupt\.mp4.*after \d+ frames"):
        list(open_source(bad))
    out = tmp_path / "out_corrupt"
    code, err = _extract(bad, out, capsys)
    assert code == InputError.exit_code and err.count("\n") == 0 and "Traceback" not in err
    assert not list(out.glob("*.png")) if out.exists() else True

    concealed = _corrupt(write_clip(tmp_path / "ok.ts", images * 4), "corrupt.ts")
    frames = list(open_source(concealed))
    assert len(images) * 2 <= len(frames) <= len(images) * 4
    assert [f.index for f in frames] == list(range(len(frames)))
    assert all(b.timestamp > a.timestamp for a, b in zip(frames, frames[1:], strict=False))


# -- accepted ----------------------------------------------------------------------------------------

def test_one_frame_video_is_extracted(tmp_path, images, capsys):
    clip = write_clip(tmp_path / "one.mp4", images[:1])
    frames = list(open_source(clip))
    assert len(frames) == 1 and frames[0].index == 0 and frames[0].timestamp == 0.0
    code, _ = _extract(clip, tmp_path / "out", capsys)
    assert code == 0 and _timestamps(tmp_path / "out") == [0.0]


def test_variable_frame_rate_keeps_its_timestamps(tmp_path, images, capsys):
    clip = tmp_path / "vfr.mp4"
    times_ms = [0, 40, 80, 200, 240, 500]  # 25 fps with two long gaps
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 360, 288, "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)  # else pts round to 1/25 s
        stream.options = {"crf": "12", "threads": "1"}
        for image, ms in zip(images, times_ms, strict=True):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = ms, Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    frames = list(open_source(clip))
    got = [round(f.timestamp * 1000) for f in frames]
    assert [g - got[0] for g in got] == times_ms
    code, _ = _extract(clip, tmp_path / "out", capsys)
    assert code == 0
    stamps = _timestamps(tmp_path / "out")
    assert [round((s - stamps[0]) * 1000) for s in stamps] == times_ms


def test_interlaced_mpeg2_is_extracted(tmp_path, images, capsys):
    clip = tmp_path / "interlaced.mpg"
    with av.open(str(clip), "w", format="mpeg") as out:
        stream = out.add_stream("mpeg2video", rate=25)
        stream.width, stream.height, stream.pix_fmt = 360, 288, "yuv420p"
        stream.bit_rate = 4_000_000
        stream.options = {"flags": "+ilme+ildct", "top": "1", "threads": "1"}
        for image in images:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())
    frames = list(open_source(clip))
    assert len(frames) == len(images)
    assert all(b.timestamp > a.timestamp for a, b in zip(frames, frames[1:], strict=False))
    code, _ = _extract(clip, tmp_path / "out", capsys)
    assert code == 0 and len(_timestamps(tmp_path / "out")) == len(images)


def test_paths_with_spaces_and_non_ascii_characters(tmp_path, images, capsys):
    folder = tmp_path / "Dreh tag 2 – Szene ä" / "日本 clips"
    folder.mkdir(parents=True)
    clip = write_clip(folder / "take 1 é.mp4", images[:3])
    assert len(list(open_source(clip))) == 3
    out = tmp_path / "faces ø ñ"
    code, _ = _extract(clip, out, capsys)
    assert code == 0 and len(_timestamps(out)) == 3
    assert {meta.source for _, meta in Faceset(out).metas()} == {str(clip)}
    # a folder of stills with such names is read too
    stills = tmp_path / "stills ü 写真"
    stills.mkdir()
    for i, image in enumerate(images[:2]):
        ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        (stills / f"bild {i} ß.png").write_bytes(data.tobytes())
    assert [f.name for f in open_source(stills)] == ["bild 0 ß", "bild 1 ß"]
