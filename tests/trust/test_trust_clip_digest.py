"""Issue 16: a regraded plate of the same byte size is another clip for resume and for the watermark payload."""

from __future__ import annotations

import os
import shutil
from types import SimpleNamespace

from facedouble.merge.pipeline import MergeConfig, Outputs, clip_digest, fingerprint
from facedouble.trust.render import payload_for
from tests.standin import ShiftSwapper
from tests.trust.conftest import grid_clip


def _regrade(path):
    """Same name, same byte size, other content (one byte changed), same mtime: what name+size missed."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # the cache key moves with mtime, as a rewrite does


def test_fingerprint_and_payload_follow_the_clip_content(tmp_path):
    clip = tmp_path / "plate.mpg"
    shutil.copyfile(grid_clip("pwij3p"), clip)
    copy = tmp_path / "elsewhere" / "plate.mpg"
    copy.parent.mkdir()
    shutil.copyfile(clip, copy)
    model, config = ShiftSwapper(96), MergeConfig()

    def fp(path):
        plan = SimpleNamespace(clip=path, info=SimpleNamespace(width=360, height=288), faces={})
        return fingerprint(model, plan, config, [], Outputs(png_dir=tmp_path / "png"))

    before = (fp(clip), payload_for("m", clip, {}), clip_digest(clip))
    assert (fp(copy), payload_for("m", copy, {})) == before[:2]  # another mount point: the same render
    size = clip.stat().st_size
    _regrade(clip)
    assert clip.stat().st_size == size
    assert clip_digest(clip) != before[2]
    assert fp(clip) != before[0] and payload_for("m", clip, {}) != before[1]
