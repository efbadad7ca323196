"""Extract and merge hold a lock on their output, like train: a second process gets a one-line error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from facedouble.errors import FacedoubleError
from facedouble.io.lock import OutputLock, OutputLockedError, lock_path_for, part_locks

ROOT = Path(__file__).resolve().parents[2]


def _holder(lock: Path, shared: bool = False) -> subprocess.Popen:
    """Another process holding `lock` (as a running extract or merge does) until killed."""
    code = ("import sys, time; from facedouble.io.lock import OutputLock; "
            f"OutputLock(sys.argv[1], 'test', shared={shared}); print('held', flush=True); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(lock)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture()
def clip(tmp_path, grid_clip):
    from tests.footage import frames_of, write_clip

    return write_clip(tmp_path / "shot.mp4", frames_of(grid_clip("bbaf2n"), 6))


def test_second_extract_into_the_same_folder_is_refused(tmp_path, clip):
    from facedouble.extract.pipeline import LOCK_FILE, ExtractConfig, extract

    out = tmp_path / "faces"
    out.mkdir()
    holder = _holder(out / LOCK_FILE)
    try:
        with pytest.raises(OutputLockedError, match=r"in use by another extract \(pid \d+\)") as info:
            extract(clip, out, ExtractConfig(size=64, progress=False))
        assert "\n" not in str(info.value)
        assert not list(out.glob("*.png"))  # refused before any face was written
    finally:
        _kill(holder)  # the lock dies with the process (kill -9 too): no stale lock
    assert extract(clip, out, ExtractConfig(size=64, progress=False)).faces_written == 6


def test_second_merge_into_the_same_output_is_refused(tmp_path, grid_faceset):
    from facedouble.merge.pipeline import MergeConfig, Outputs, finalize, merge
    from tests.standin import ShiftSwapper

    faces = grid_faceset("bbaf2n", 64, "full")
    outputs = Outputs(video=tmp_path / "out.mp4")
    cfg = MergeConfig(segment_frames=25, batch=8)
    holder = _holder(lock_path_for(outputs.work_dir()))
    try:
        with pytest.raises(OutputLockedError, match="in use by another"):
            merge(ShiftSwapper(64), faces, outputs, cfg, hooks=_marked(), progress=False)
        assert not outputs.video.exists()
    finally:
        _kill(holder)
    # shards render side by side (each holds the whole shared, its part exclusively) ...
    first = part_locks(outputs.work_dir(), "merge", (1, 2))
    try:
        merge(ShiftSwapper(64), faces, outputs, cfg, shard=(2, 2), hooks=_marked(), progress=False)
        for code in ("part_locks(sys.argv[1], 'merge', (1, 2))",  # ... the same part twice is refused
                     "OutputLock(lock_path_for(sys.argv[1]), 'merge')"):  # ... so is a concat meanwhile
            other = subprocess.run([sys.executable, "-c", "import sys; from facedouble.io.lock import "
                                    f"OutputLock, lock_path_for, part_locks; {code}", str(outputs.work_dir())],
                                   capture_output=True, text=True, cwd=ROOT)
            assert other.returncode != 0 and "OutputLockedError" in other.stderr
        other = subprocess.run([sys.executable, "-c", "import sys; from facedouble.io.lock import part_locks; "
                                "part_locks(sys.argv[1], 'merge', (2, 2))", str(outputs.work_dir())],
                               capture_output=True, text=True, cwd=ROOT)
        assert other.returncode == 0, other.stderr  # another part beside it is fine
    finally:
        for lock in first:
            lock.release()
    merge(ShiftSwapper(64), faces, outputs, cfg, shard=(1, 2), hooks=_marked(), progress=False)
    assert finalize(outputs).frames == 75


def test_lock_is_reentrant_in_one_process_and_refuses_read_only(tmp_path, read_only_dir):
    path = tmp_path / "x.lock"
    with OutputLock(path, "merge"), OutputLock(path, "merge"):  # finalize inside merge
        pass
    with OutputLock(path, "merge"):
        pass
    with pytest.raises(FacedoubleError, match="read-only"):
        OutputLock(read_only_dir / ".x.lock", "extract")


def test_read_only_outputs_are_refused_before_any_work(read_only_dir, clip, grid_faceset, monkeypatch):
    from facedouble.extract import pipeline as extract_pipeline
    from facedouble.extract.pipeline import ExtractConfig, extract
    from facedouble.merge.pipeline import MergeConfig, Outputs, merge
    from tests.standin import ShiftSwapper

    def no_work(*args, **kwargs):
        raise AssertionError("work started on a read-only output")

    monkeypatch.setattr(extract_pipeline, "track_faces", no_work)
    with pytest.raises(FacedoubleError, match="read-only"):
        extract(clip, read_only_dir / "faces", ExtractConfig(size=64, progress=False))
    with pytest.raises(FacedoubleError, match="read-only"):
        extract(clip, read_only_dir, ExtractConfig(size=64, progress=False))
    swapper = ShiftSwapper(64)
    with pytest.raises(FacedoubleError, match="read-only|cannot create"):
        merge(swapper, grid_faceset("bbaf2n", 64, "full"), Outputs(video=read_only_dir / "out.mp4"),
              MergeConfig(segment_frames=25), hooks=_marked(), progress=False)
    assert swapper.calls == 0


def _marked():
    """Post-composite hooks as a marked render has (merge refuses to render without any)."""
    from facedouble.merge.pipeline import MergeHooks

    return MergeHooks(post_composite=[lambda ctx: None])
