import av
import numpy as np
import pytest

from facedouble.errors import InputError
from facedouble.io.video import open_source


def test_grid_clip_frames_and_timestamps(grid_clip):
    frames = list(open_source(grid_clip("bbaf2n")))
    assert len(frames) == 75
    assert [f.index for f in frames] == list(range(75))
    assert np.allclose([f.timestamp for f in frames], np.arange(75) / 25, atol=1e-6)
    assert frames[0].image.shape == (288, 360, 3) and frames[0].image.dtype == np.uint8


def test_variable_frame_rate_timestamps_kept(tmp_path, grid_clip):
    """Frames written with irregular timestamps come back with exactly those timestamps."""
    src = [f.image for f in open_source(grid_clip("bbaf2n"))][:10]
    pts = [0, 1, 3, 4, 8, 9, 10, 15, 16, 20]  # in 1/25 s
    path = tmp_path / "vfr.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 360, 288, "yuv420p"
        stream.codec_context.time_base = stream.time_base = __import__("fractions").Fraction(1, 25)
        for image, p in zip(src, pts, strict=True):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = p, stream.time_base
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    got = [f.timestamp for f in open_source(path)]
    assert np.allclose(got, np.array(pts) / 25, atol=1e-3)


def test_image_folder(tmp_path, grid_clip):
    import cv2

    for f in list(open_source(grid_clip("lbbc2a")))[:3]:
        cv2.imwrite(str(tmp_path / f"{f.index:03d}.png"), f.image)
    frames = list(open_source(tmp_path))
    assert [f.index for f in frames] == [0, 1, 2] and frames[0].image.shape == (288, 360, 3)


@pytest.mark.parametrize("content", [b"", b"this is not a video\n"])
def test_unreadable_input_is_a_one_line_error(tmp_path, content):
    path = tmp_path / "clip.mp4"
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        list(open_source(path))
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def _encode_with_gop(path, images, pts=None, gop=10):
    """H.264 with a keyframe every `gop` frames and B-frames (frames decode out of display order)."""
    from fractions import Fraction

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 360, 288, "yuv420p"
        stream.options = {"crf": "18", "threads": "1", "x264-params": f"keyint={gop}:min-keyint={gop}:bframes=2"}
        for i, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = (pts[i] if pts else i), Fraction(1, 25)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


@pytest.mark.parametrize("variable_rate", [False, True])
def test_frames_from_an_index_seek_and_match_a_full_pass(tmp_path, grid_clip, monkeypatch, variable_rate):
    from facedouble.io.video import FrameSource

    images = [f.image for f in open_source(grid_clip("bbaf2n"))][:40]
    pts = [i + i // 7 for i in range(40)] if variable_rate else None  # a gap every 7 frames
    path = _encode_with_gop(tmp_path / "gop.mp4", images, pts)
    full = list(open_source(path))
    assert len(full) == 40
    # after the full pass, decoding from frame 0 is forbidden: every start below must seek
    monkeypatch.setattr(FrameSource, "_iter_video", lambda self: pytest.fail("decoded from the start"))
    for start in (1, 9, 10, 11, 23, 39):
        got = list(open_source(path).frames(start))
        assert [f.index for f in got] == list(range(start, 40)), start
        for a, b in zip(got, full[start:], strict=True):
            assert a.timestamp == pytest.approx(b.timestamp, abs=1e-6)
            assert np.array_equal(a.image, b.image), (start, a.index)
    assert list(open_source(path).frames(40)) == []


def test_frames_from_an_index_without_a_container_index(grid_clip):
    """MPEG-PS has no index (seeking lands past the frame): it decodes from the start, same frames."""
    full = list(open_source(grid_clip("bbaf2n")))
    got = list(open_source(grid_clip("bbaf2n")).frames(40))
    assert [f.index for f in got] == list(range(40, 75))
    assert all(np.array_equal(a.image, b.image) for a, b in zip(got, full[40:], strict=True))
