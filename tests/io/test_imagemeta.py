import cv2
import numpy as np
import pytest

from facedouble.errors import InputError
from facedouble.io import imagemeta


@pytest.fixture(scope="module")
def frame(grid_clip):
    from facedouble.io.video import open_source

    return next(iter(open_source(grid_clip("bbaf2n")))).image


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_text_round_trips_and_replaces(frame, ext):
    ok, buf = cv2.imencode(ext, frame)
    data = imagemeta.set_text(buf.tobytes(), "k", "first ✓")
    data = imagemeta.set_text(data, "k", "second ✓" * 20000)  # > one JPEG segment
    assert imagemeta.get_text(data, "k") == "second ✓" * 20000
    assert imagemeta.get_text(data, "other") is None
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == frame.shape  # image still decodes
    assert imagemeta.get_text(imagemeta.remove_text(data, "k"), "k") is None


def test_oversized_text_rejected(frame):
    ok, buf = cv2.imencode(".png", frame)
    with pytest.raises(InputError, match="over the"):
        imagemeta.set_text(buf.tobytes(), "k", "x" * (imagemeta.MAX_TEXT_BYTES + 1))


def test_truncated_png_rejected(frame):
    ok, buf = cv2.imencode(".png", frame)
    data = imagemeta.set_text(buf.tobytes(), "k", "v")
    with pytest.raises(InputError, match="truncated"):
        imagemeta.get_text(data[: len(data) // 2], "k")


def test_atomic_write_leaves_no_temp_file_and_normal_permissions(tmp_path):
    import os

    from facedouble.io.atomic import atomic_open, atomic_write_bytes

    atomic_write_bytes(tmp_path / "a.bin", b"one")
    with pytest.raises(RuntimeError), atomic_open(tmp_path / "a.bin") as handle:
        handle.write(b"half-written")
        raise RuntimeError("interrupted")
    assert (tmp_path / "a.bin").read_bytes() == b"one"  # the old content survives a failed write
    assert os.listdir(tmp_path) == ["a.bin"]
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o666 & ~_current_umask()


def _current_umask():
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask
