"""Frames of the target clip while the artist scrubs: one decoder kept open, the last frames kept in memory.

A fresh read of frame N (`open_source(clip).frames(N)`) probes the file, reads every packet's timestamp,
seeks to the keyframe before N and decodes up to N: for a long-GOP H.264 plate that is up to a GOP of
decoding, every preview (and again for the wipe's plate). Scrubbing moves a few frames at a time, so the
studio keeps the decoder of the last request open and decodes on from there when the next frame is a few
frames ahead, and keeps the frames it decoded (bounded by bytes) for stepping back and for the plate. It
reads through facedouble.io.video, the one frame reader: same indices and pixels as merge.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator
from pathlib import Path

from facedouble.errors import InputError
from facedouble.io.video import Frame, FrameSource, open_source

AHEAD = 12  # decode on rather than seek when the frame is at most this far ahead (arrow keys, Shift+arrow = 10)
CACHE_BYTES = 160 * 2**20  # ~57 frames at 720p, ~25 at 1080p, ~6 at UHD
CLIPS = 2  # scrubbers kept (one target per page; a second for switching back and forth)


class Scrubber:
    """Frame `index` of one clip on demand, decoding on from the previous request when it is just ahead."""

    def __init__(self, clip: str | Path, cache_bytes: int = CACHE_BYTES, ahead: int = AHEAD):
        self.source: FrameSource = open_source(clip)
        self.cache_bytes, self.ahead = cache_bytes, ahead
        self._frames: collections.OrderedDict[int, Frame] = collections.OrderedDict()
        self._bytes = 0
        self._live: Iterator[Frame] | None = None
        self._next = 0  # index the live decoder yields next
        self._lock = threading.Lock()
        self.decoded = 0  # frames decoded so far (tests and the benchmark read it)

    def frame(self, index: int) -> Frame:
        """Frame `index` (InputError past the end of the clip)."""
        if index < 0:
            raise InputError("frame must be >= 0")
        with self._lock:
            hit = self._frames.get(index)
            if hit is not None:
                self._frames.move_to_end(index)
                return hit
            if self._live is None or not self._next <= index <= self._next + self.ahead:
                self._close()
                self._live, self._next = self.source.frames(index), index
            try:
                for frame in self._live:
                    self.decoded += 1
                    self._next = frame.index + 1
                    self._keep(frame)
                    if frame.index >= index:
                        if frame.index == index:
                            return frame
                        break  # a reader that skipped the frame: report it, as a fresh read would
            except BaseException:
                self._close()  # a reader that failed is not continued: the next request seeks afresh
                raise
            self._close()
            raise InputError(f"frame {index} is past the end of {self.source.path.name}")

    def _keep(self, frame: Frame) -> None:
        frame.image.flags.writeable = False  # shared by later previews and plates: an in-place write would leak
        self._frames[frame.index] = frame
        self._bytes += frame.image.nbytes
        while self._bytes > self.cache_bytes and len(self._frames) > 1:
            self._bytes -= self._frames.popitem(last=False)[1].image.nbytes

    def _close(self) -> None:
        if self._live is not None:
            self._live.close()  # GeneratorExit closes the container inside the reader
        self._live = None

    def close(self) -> None:
        """Close the open decoder and drop the kept frames."""
        with self._lock:
            self._close()
            self._frames.clear()
            self._bytes = 0


_scrubbers: collections.OrderedDict[tuple, Scrubber] = collections.OrderedDict()
_lock = threading.Lock()


def scrubber(clip: str | Path) -> Scrubber:
    """The scrubber of `clip`, made once per file content (path, size and mtime: a replaced file is re-read)."""
    path = Path(clip).resolve()
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _lock:
        hit = _scrubbers.get(key)
        if hit is not None:
            _scrubbers.move_to_end(key)
            return hit
    made = Scrubber(path)
    with _lock:
        hit = _scrubbers.setdefault(key, made)
        _scrubbers.move_to_end(key)
        while len(_scrubbers) > CLIPS:
            _scrubbers.popitem(last=False)[1].close()
    if hit is not made:
        made.close()
    return hit
