"""The frame reader at the source's own bit depth (issue 15): 10/12-bit video into uint16, full and limited
range told apart, colour tags and timecode read. Sources are made here with PyAV from GRID frames."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from facedouble.io.video import open_source, to_uint8


def luma(frame: av.VideoFrame) -> np.ndarray:
    """The Y plane of a decoded frame as integers (8 or 16-bit storage)."""
    plane = frame.planes[0]
    dtype = np.uint16 if frame.format.components[0].bits > 8 else np.uint8
    row = plane.line_size // np.dtype(dtype).itemsize
    return np.frombuffer(plane, dtype).reshape(-1, row)[:frame.height, :frame.width].astype(int)


def barred(image: np.ndarray) -> np.ndarray:
    """A frame with a black bar on top and a white one at the bottom (16 rows each): level markers."""
    out = image.copy()
    out[:16], out[-16:] = 0, 255
    return out


def write_clip(path: Path, images: list[np.ndarray], pix_fmt: str = "yuv420p10le", full_range: bool = False,
               encoder: str = "libx264", lossless: bool = True, timecode: str | None = None) -> Path:
    """H.264/H.265 at the pixel format's depth, tagged BT.709 and limited or full range; lossless by default."""
    colour_range = 2 if full_range else 1
    with av.open(str(path), "w") as out:
        stream = out.add_stream(encoder, rate=25)
        stream.width, stream.height, stream.pix_fmt = images[0].shape[1], images[0].shape[0], pix_fmt
        if encoder == "libx264":
            stream.options = {"qp": "0", "threads": "1"} if lossless else {"crf": "12", "threads": "1"}
        else:
            stream.options = {"x265-params": "lossless=1:log-level=error:pools=none:frame-threads=1"}
        stream.codec_context.color_range = colour_range
        stream.codec_context.colorspace = 1
        stream.codec_context.color_primaries = 1
        stream.codec_context.color_trc = 1
        if timecode:
            stream.metadata["timecode"] = timecode
        for index, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image.astype(np.uint16) * 257), format="rgb48le")
            frame = frame.reformat(format=pix_fmt, dst_colorspace=1, dst_color_range=colour_range)
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def frames(grid_clip) -> list[np.ndarray]:
    return [barred(f.image) for f in open_source(grid_clip("bbaf2n")) if f.index < 3]


@pytest.mark.parametrize("full_range", [False, True])
def test_10_bit_limited_and_full_range_decode_to_the_same_levels(frames, tmp_path, full_range):
    path = write_clip(tmp_path / "c.mp4", frames, full_range=full_range)
    with av.open(str(path)) as container:
        y = luma(next(container.decode(video=0)))
    # the black bar is stored as the range's black: 64 (limited, 10-bit) or 0 (full); white as 940 or 1023
    # (within a code: swscale, which made these clips, is not exact at 16 bits)
    assert np.median(y[:16]) == (0 if full_range else 64)
    assert abs(np.median(y[-16:]) - (1023 if full_range else 940)) <= (0 if full_range else 3)
    source = open_source(path, deep=True)
    info = source.info
    assert (info.bit_depth, info.pix_fmt) == (10, "yuv420p10le")
    assert info.colour == {"colorspace": 1, "color_range": 2 if full_range else 1, "color_primaries": 1,
                           "color_trc": 1}
    decoded = list(source)
    assert len(decoded) == 3
    for frame, original in zip(decoded, frames, strict=True):
        assert frame.deep.dtype == np.float32 and frame.deep.shape == (*original.shape[:2], 3)
        assert np.array_equal(frame.image, to_uint8(frame.deep))
        # honoured range: black is 0 and white 1 in both (a full-range clip read as limited would crush them,
        # a limited one read as full would lift black to 64/1023)
        assert np.abs(frame.deep[2:14]).max() <= 0.005
        assert np.abs(1 - frame.deep[-14:-2]).max() <= 0.005
        inner = slice(20, -20)
        assert np.abs(frame.image[inner].astype(int) - original[inner]).mean() < 1.0


def test_12_bit_hevc_and_timecode_are_read(frames, tmp_path):
    path = write_clip(tmp_path / "c.mov", frames, pix_fmt="yuv420p12le", encoder="libx265", timecode="10:00:00:00")
    source = open_source(path, deep=True)
    assert source.info.bit_depth == 12 and source.info.timecode == "10:00:00:00"
    frame = next(iter(source))
    assert frame.deep.dtype == np.float32
    # 12 bits of detail: values between the 8-bit steps (an 8-bit source would sit on them)
    assert np.mean(np.abs(frame.deep * 255 - np.rint(frame.deep * 255)) > 0.05) > 0.3


def test_8_bit_sources_stay_8_bit(frames, tmp_path):
    path = write_clip(tmp_path / "c.mp4", frames, pix_fmt="yuv420p")
    source = open_source(path, deep=True)
    assert source.info.bit_depth == 8 and source.info.timecode is None
    frame = next(iter(source))
    assert frame.deep is None and frame.image.dtype == np.uint8
    assert np.array_equal(frame.image, next(iter(open_source(path))).image)


@pytest.mark.parametrize("pix_fmt", ["yuv420p10le", "yuv422p10le", "yuv444p12le", "yuva444p10le"])
@pytest.mark.parametrize("full_range", [False, True])
def test_ycbcr_round_trip_keeps_every_code(pix_fmt, full_range):
    """facedouble.io.ycbcr: any codes (super-whites, out-of-gamut chroma, odd sizes) -> float RGB -> the same
    codes: what lets merge hand back untouched pixels exactly (swscale's 16-bit RGB does not)."""
    from facedouble.io.ycbcr import from_rgb, planar_layout, to_rgb

    bits = planar_layout(pix_fmt)[0]
    rng = np.random.default_rng(3)
    frame = av.VideoFrame(37, 23, pix_fmt)
    codes = []
    for plane in frame.planes:
        values = rng.integers(0, 1 << bits, (plane.height, plane.width)).astype("<u2")
        codes.append(values)
        plane.update(np.pad(values, ((0, 0), (0, plane.line_size // 2 - plane.width))))
    rgb = to_rgb(frame, 1, full_range)
    back = from_rgb(rgb, pix_fmt, 1, full_range)
    for plane, values in zip(back.planes[:3], codes[:3], strict=True):
        row = plane.line_size // 2
        assert np.array_equal(np.frombuffer(plane, "<u2").reshape(-1, row)[:plane.height, :plane.width], values)
    assert planar_layout("yuv420p") is None and planar_layout("p010le") is None
