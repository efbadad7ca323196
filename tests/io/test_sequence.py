"""Image sequences at full precision (facedouble.io.sequence) and colour management (facedouble.io.ocio):
numbering, rate, channel names, data windows, DPX/TIFF/PNG depths, and the bad-media errors.

Plates are made in the test from a real GRID clip with OpenImageIO (nothing committed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facedouble.errors import InputError
from facedouble.io.ocio import ColourConverter
from facedouble.io.sequence import MediaOptions, format_frame_path, is_sequence_pattern, media_options, read_plate
from facedouble.io.video import open_source

oiio = pytest.importorskip("OpenImageIO")

FRAMES = 3


@pytest.fixture(scope="module")
def grid_frames(grid_clip) -> list[np.ndarray]:
    """The first frames of a GRID clip, 8-bit RGB."""
    out = []
    for frame in open_source(grid_clip("bbaf2n")):
        out.append(frame.image)
        if len(out) == FRAMES:
            break
    return out


def write(path: Path, pixels: np.ndarray, kind: str, channels=("R", "G", "B"), attrs: dict | None = None,
          window: tuple[int, int, int, int] | None = None) -> None:
    """One image with OpenImageIO; `window` (x, y, full_w, full_h) makes a data window inside a display one."""
    h, w, c = pixels.shape
    spec = oiio.ImageSpec(w, h, c, kind)
    spec.channelnames = tuple(channels)
    for name, value in (attrs or {}).items():
        if isinstance(value, tuple):
            spec.attribute(name, oiio.TypeDesc(value[0]), value[1])
        else:
            spec.attribute(name, value)
    if window is not None:
        spec.x, spec.y = window[0], window[1]
        spec.full_x, spec.full_y, spec.full_width, spec.full_height = 0, 0, window[2], window[3]
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec), oiio.geterror()
    assert out.write_image(np.ascontiguousarray(pixels))
    out.close()


def acescg_sequence(folder: Path, frames: list[np.ndarray], first: int = 1001, **kwargs) -> list[np.ndarray]:
    """Half EXRs in ACEScg (tagged), numbered from `first`; returns the float plates as stored."""
    folder.mkdir(parents=True, exist_ok=True)
    conv = ColourConverter("ACEScg")
    plates = []
    for i, image in enumerate(frames):
        lin = conv.to_plate(image.astype(np.float32) / 255.0).astype(np.float16)
        write(folder / f"shot.{first + i:04d}.exr", lin, "half", attrs={"oiio:ColorSpace": "ACEScg"}, **kwargs)
        plates.append(lin.astype(np.float32))
    return plates


def test_exr_sequence_keeps_numbers_rate_and_values(grid_frames, tmp_path):
    plates = acescg_sequence(tmp_path / "plate", grid_frames)
    source = open_source(tmp_path / "plate")
    seq = source.sequence
    assert seq is not None and seq.numbers == [1001, 1002, 1003] and seq.pattern() == "shot.%04d.exr"
    assert source.info.frame_count == FRAMES and source.info.fps == 25.0  # no metadata, no --fps: 25
    assert seq.converter.plate_space == "ACEScg"  # from the file's tag
    frames = list(source)
    assert [f.name for f in frames] == ["shot.1001", "shot.1002", "shot.1003"]
    for frame, plate, original in zip(frames, plates, grid_frames, strict=True):
        assert np.array_equal(seq.read_plate(frame.index).rgb, plate)  # full precision, bit for bit
        # the 8-bit working view of an ACEScg plate made from 8-bit sRGB comes back within one code value
        assert np.abs(frame.image.astype(int) - original).max() <= 1
    deep = next(open_source(tmp_path / "plate", deep=True).frames())
    # the deep view is the working space at full precision; the 8-bit frame is its rounding
    assert deep.deep is not None and np.allclose(deep.deep, seq.converter.to_working(plates[0]))
    assert np.array_equal(np.clip(np.rint(deep.deep * 255), 0, 255).astype(np.uint8), frames[0].image)
    with media_options(MediaOptions(fps=24.0)):
        assert open_source(tmp_path / "plate").info.fps == 24.0


def test_rate_from_metadata_layers_and_data_window(grid_frames, tmp_path):
    folder = tmp_path / "layers"
    folder.mkdir()
    image = grid_frames[0].astype(np.float32) / 255.0
    h, w = image.shape[:2]
    crop = image[10:h - 20, 30:w - 40]
    # channels of a named layer only, in a data window smaller than the display window, 24 fps in the header
    for n in (7, 8):
        write(folder / f"plate_{n:03d}.exr", crop.astype(np.float16), "half",
              channels=("beauty.R", "beauty.G", "beauty.B"), attrs={"framesPerSecond": ("rational", (24, 1))},
              window=(30, 10, w, h))
    source = open_source(folder)
    assert source.info.fps == 24.0 and (source.info.width, source.info.height) == (w, h)
    assert source.sequence.numbers == [7, 8] and source.sequence.pattern() == "plate_%03d.exr"
    rgb = source.sequence.read_plate(0).rgb
    assert np.array_equal(rgb[10:h - 20, 30:w - 40], crop.astype(np.float16).astype(np.float32))
    assert not rgb[:10].any() and not rgb[:, :30].any()  # outside the data window: nothing stored, zero


def test_dpx_tiff_png_depths_read_exactly(grid_frames, tmp_path):
    image = grid_frames[0]
    v10 = (image.astype(np.uint16) * 4 + 1)  # 10-bit codes, not a multiple of an 8-bit value
    write(tmp_path / "d.dpx", v10.astype(np.float32) / 1023.0, "uint16", attrs={"oiio:BitsPerSample": 10})
    plate = read_plate(tmp_path / "d.dpx")
    assert plate.bits == 10 and np.array_equal(np.rint(plate.rgb * 1023).astype(np.uint16), v10)
    v16 = image.astype(np.uint16) * 257 + 3
    for name in ("t.tif", "p.png"):
        write(tmp_path / name, v16, "uint16")
        got = read_plate(tmp_path / name)
        assert got.bits == 16 and np.array_equal(np.rint(got.rgb * 65535).astype(np.uint16), v16)
    write(tmp_path / "f.tif", image.astype(np.float32) / 200.0, "float")  # 32-bit float TIFF, over 1.0 kept
    assert read_plate(tmp_path / "f.tif").rgb.max() > 1.0


def test_integer_sequences_are_sequences_and_8_bit_folders_are_not(grid_frames, tmp_path):
    deep = tmp_path / "deep"
    deep.mkdir()
    for i, image in enumerate(grid_frames):
        write(deep / f"s.{i + 1:04d}.tif", image.astype(np.uint16) * 257, "uint16")
    assert open_source(deep).sequence.numbers == [1, 2, 3]
    assert open_source(deep).sequence.converter.identity  # integer files: sRGB, the working space itself
    flat = tmp_path / "flat"
    flat.mkdir()
    for i, image in enumerate(grid_frames):
        write(flat / f"{i:06d}.png", image, "uint8")
    assert open_source(flat).sequence is None  # the plain 8-bit image reader, as before


def test_output_patterns():
    assert is_sequence_pattern("out/shot.%04d.exr") and is_sequence_pattern("out/shot.####.dpx")
    assert not is_sequence_pattern("out/render.mp4") and not is_sequence_pattern("out/folder")
    assert format_frame_path("o/shot.%04d.exr", 1001) == Path("o/shot.1001.exr")
    assert format_frame_path("o/shot.####.tif", 7) == Path("o/shot.0007.tif")


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_bad_media_errors_name_the_file_or_frame(grid_frames, tmp_path):
    gap = tmp_path / "gap"
    acescg_sequence(gap, grid_frames)
    (gap / "shot.1002.exr").unlink()
    with pytest.raises(InputError) as exc:
        open_source(gap)
    assert "frame 1002 is missing" in _one_line(exc)

    cut = tmp_path / "cut"
    acescg_sequence(cut, grid_frames)
    data = (cut / "shot.1002.exr").read_bytes()
    (cut / "shot.1002.exr").write_bytes(data[:len(data) // 2])  # truncated: a frame cut short
    with pytest.raises(InputError) as exc:
        list(open_source(cut))
    assert "shot.1002.exr" in _one_line(exc)

    norgb = tmp_path / "norgb"
    norgb.mkdir()
    write(norgb / "z.0001.exr", np.ones((8, 8, 1), np.float16), "half", channels=("Z",))
    with pytest.raises(InputError) as exc:
        list(open_source(norgb))
    assert "z.0001.exr has no RGB channels (channels: Z)" in _one_line(exc)

    dpx = tmp_path / "dpx"
    dpx.mkdir()
    write(dpx / "d.0001.dpx", grid_frames[0].astype(np.float32) / 255.0, "uint16", attrs={"oiio:BitsPerSample": 10})
    data = bytearray((dpx / "d.0001.dpx").read_bytes())
    data[804:806] = (2).to_bytes(2, "big" if data[:4] == b"SDPX" else "little")  # packing: filled, method B
    (dpx / "d.0001.dpx").write_bytes(bytes(data))
    with pytest.raises(InputError) as exc:
        open_source(dpx)
    assert "unsupported DPX packing 2" in _one_line(exc) and "d.0001.dpx" in str(exc.value)

    with media_options(MediaOptions(colourspace="ACES-not-a-space")), pytest.raises(InputError) as exc:
        open_source(tmp_path / "norgb")
    assert "unknown OCIO colour space 'ACES-not-a-space'" in _one_line(exc)


def test_cli_reports_bad_media_in_one_line(grid_frames, tmp_path, capsys):
    import facedouble.cli as cli

    gap = tmp_path / "gap"
    acescg_sequence(gap, grid_frames)
    (gap / "shot.1002.exr").unlink()
    code = cli.main(["extract", str(gap), str(tmp_path / "fs"), "--fps", "24", "--colourspace", "ACEScg"])
    err = capsys.readouterr().err.strip()
    assert code == 3 and len(err.splitlines()) == 1 and "frame 1002 is missing" in err
    acescg_sequence(tmp_path / "good", grid_frames)
    code = cli.main(["extract", str(tmp_path / "good"), str(tmp_path / "fs"), "--colourspace", "nope"])
    err = capsys.readouterr().err.strip()
    assert code == 3 and len(err.splitlines()) == 1 and "unknown OCIO colour space 'nope'" in err


def test_ocio_round_trip_and_linear_rec709():
    rng = np.random.default_rng(1)
    work = rng.random((16, 16, 3), dtype=np.float32)
    for space in ("ACEScg", "Linear Rec.709 (sRGB)", "lin_rec709"):
        conv = ColourConverter(space)
        assert not conv.identity
        assert np.abs(conv.to_working(conv.to_plate(work)) - work).max() < 1e-4
    assert ColourConverter("srgb_texture").identity
