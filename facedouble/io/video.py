"""The one frame reader: any FFmpeg-readable video (via PyAV) or a folder of images.

Every frame keeps its decode index and its presentation timestamp in seconds, so variable-frame-rate
footage is rendered back with the timestamps it came with.

Precision: `Frame.image` is always RGB uint8 (what detection, masks and the model see). A reader opened
with `deep=True` also fills `Frame.deep` for sources stored above 8 bits (10/12-bit ProRes, DNxHR, H.265):
float32 RGB, nominal 0..1 and unclipped (super-whites kept), converted with the stream's own matrix and range
(limited or full) by facedouble.io.ycbcr, and `image` is derived from it (round(deep * 255)) whether or not
`deep` is kept, so extract and merge see the same 8-bit pixels. The source's colour
tags, bit depth, timecode and audio streams are in `SourceInfo`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facedouble.errors import InputError

if TYPE_CHECKING:
    from facedouble.io.sequence import Plate

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
# Largest frame accepted (about 12K x 10K): a crafted header announcing 16k x 16k or more is refused before
# a decoder allocates gigabytes for it (OpenCV's own cap is 2^30 pixels, 3 GiB of RGB).
MAX_PIXELS = 120_000_000


@dataclasses.dataclass
class Frame:
    """One decoded frame: RGB uint8 image, 0-based index, timestamp in seconds; `deep` the full-precision RGB
    (float32, nominal 0..1, or uint16 0..65535) when the reader was opened with deep=True and the source
    holds more than 8 bits, else None; `plate` the file's own pixels (facedouble.io.sequence.Plate: its colour
    space, alpha and header) when the reader was opened with plates=True and the source is an image sequence,
    so a sequence writer need not read the file again."""

    index: int
    timestamp: float
    image: np.ndarray
    name: str = ""
    deep: np.ndarray | None = None
    plate: Plate | None = None


@dataclasses.dataclass
class SourceInfo:
    """What is known about a source before decoding it."""

    path: str
    kind: str  # "video" or "images"
    width: int
    height: int
    fps: float | None
    frame_count: int | None
    has_audio: bool
    rotation: int = 0  # display rotation (degrees counter-clockwise) applied to every frame; 0, 90, 180, 270
    bit_depth: int = 8  # bits per sample as stored (10 for ProRes 422 HQ, 8 for most H.264)
    pix_fmt: str = ""  # the decoder's pixel format (yuv422p10le, yuv420p, ...)
    # FFmpeg's colour tags as numbers (AVColorSpace/Range/Primaries/TransferCharacteristic; 2 = unspecified,
    # range 1 = limited "tv", 2 = full "pc"): decoding honours matrix and range, writers copy all four.
    colour: dict[str, int] = dataclasses.field(default_factory=dict)
    timecode: str | None = None  # SMPTE timecode of the first frame (MOV/MP4 tmcd or container tag)
    audio_streams: int = 0
    first_number: int = 0  # frame number of the first frame (an image sequence keeps its own, e.g. 1001)


def _av_error_message(path: Path, exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"cannot read {path}: {text}"


class FrameSource:
    """Iterate the frames of a video file or an image folder.

    Raises InputError (one line) for a missing, unreadable, empty or truncated source. Truncation is
    detected from decoder errors and from a frame count that falls clearly short of the container's
    declared duration.
    """

    def __init__(self, path: str | Path, deep: bool = False, plates: bool = False):
        self.path = Path(path)
        self.deep, self.plates = deep, plates
        if not self.path.exists():
            raise InputError(f"input not found: {self.path}")
        self.sequence = None  # an EXR/DPX/16-bit image sequence (facedouble.io.sequence), read at full precision
        if self.path.is_dir() and (sequence := _find_sequence(self.path)) is not None:
            self.sequence, self._images, self.info = sequence, sequence.paths, sequence.info
        elif self.path.is_dir():
            self._images = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._images:
                raise InputError(f"no images in folder {self.path}")
            first = self._read_image(self._images[0])
            self.info = SourceInfo(str(self.path), "images", first.shape[1], first.shape[0], None,
                                   len(self._images), False)
        else:
            self._images = []
            self.info = self._probe_video()

    @staticmethod
    def _read_image(path: Path) -> np.ndarray:
        import cv2

        from facedouble.io.imageheader import check_image_size

        data = np.fromfile(path, dtype=np.uint8)
        check_image_size(data[:1 << 16].tobytes(), path, MAX_PIXELS)  # from the header, before decoding
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if image is None:
            raise InputError(f"cannot read image {path}")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def _probe_video(self) -> SourceInfo:
        import av

        if self.path.stat().st_size == 0:
            raise InputError(f"cannot read {self.path}: file is empty")
        from facedouble.io.imageheader import check_image_size

        # A still image given as the input goes through FFmpeg's image demuxers, which report no size at
        # probe time and allocate the full frame when decoding: refuse an oversized one from its header.
        with open(self.path, "rb") as handle:
            check_image_size(handle.read(1 << 16), self.path, MAX_PIXELS)
        try:
            with av.open(str(self.path)) as container:
                if not container.streams.video:
                    raise InputError(f"cannot read {self.path}: no video stream")
                stream = container.streams.video[0]
                fps = float(stream.average_rate) if stream.average_rate else None
                duration = None
                if stream.duration and stream.time_base:
                    duration = float(stream.duration * stream.time_base)
                elif container.duration:
                    duration = container.duration / 1_000_000
                frames = stream.frames or (round(duration * fps) if duration and fps else None)
                self._declared_duration = duration
                if stream.codec_context is None:  # a codec FFmpeg does not know (or a mangled codec tag)
                    raise InputError(f"cannot read {self.path}: the video codec is unknown or unsupported")
                width, height = stream.codec_context.width, stream.codec_context.height
                if width * height > MAX_PIXELS:
                    raise InputError(f"cannot read {self.path}: {width}x{height} frames are over the "
                                     f"{MAX_PIXELS // 1_000_000} MP limit")
                # A phone stores portrait video as landscape pixels plus a display matrix: read the first
                # frame's rotation so frames (and the sizes reported here) are upright, as a player shows them.
                rotation = _first_rotation(container, stream)
                if rotation in (90, 270):
                    width, height = height, width
                cc = stream.codec_context
                pix_fmt = cc.pix_fmt or ""
                colour = {k: int(getattr(cc, k, 2) or 2) for k in ("colorspace", "color_range", "color_primaries",
                                                                     "color_trc")}
                if pix_fmt.startswith("yuvj"):  # the JPEG pixel formats are full range whatever the tag says
                    colour["color_range"] = 2
                timecode = stream.metadata.get("timecode") or container.metadata.get("timecode")
                return SourceInfo(str(self.path), "video", width, height, fps, frames,
                                  bool(container.streams.audio), rotation, _bit_depth(pix_fmt), pix_fmt, colour,
                                  timecode, len(container.streams.audio))
        except InputError:
            raise
        except (av.error.FFmpegError, ValueError, OSError, MemoryError) as exc:
            raise InputError(_av_error_message(self.path, exc)) from None

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    @property
    def _deep_now(self) -> tuple[bool, bool]:
        """(decode at full precision: the source holds more than 8 bits; keep `deep` on the frame: also asked).

        A deep source's 8-bit view is always derived from its full-precision RGB, never swscale's direct
        (dithered) 8-bit conversion, so extract (8-bit) and merge (deep) see the same pixels."""
        wide = self.info.bit_depth > 8
        return wide, wide and self.deep

    def frames(self, start: int = 0) -> Iterator[Frame]:
        """Frames from index `start` on, with the same indices, timestamps and pixels as a full pass.

        Indexed containers (MP4/MOV/MKV) seek to the keyframe before `start`, so a late frame costs one
        GOP of decoding, not the whole clip; other containers (MPEG-PS has no index) decode from the start.
        """
        if self.sequence is not None:
            yield from self.sequence.frames(start, deep=self.deep, plates=self.plates)
            return
        if self.info.kind == "images":
            for index in range(max(0, start), len(self._images)):
                path = self._images[index]
                yield Frame(index, 0.0, self._read_image(path), path.stem)
            return
        if start > 0:
            table = self._presentation_times()
            if table is not None:
                if start >= len(table):
                    return
                try:
                    yield from self._iter_seeked(start, table)
                    return
                except _SeekMissError:  # raised before any frame was yielded: decode from the start instead
                    pass
        for frame in self._iter_video():
            if frame.index >= start:
                yield frame

    def _presentation_times(self) -> list[int] | None:
        """Every frame's pts in display order, read from the packets (no decoding); None where seeking
        cannot be exact (no index in the container, or packets without timestamps)."""
        import av

        try:
            with av.open(str(self.path)) as container:
                if not {"mov", "mp4", "matroska"} & set(container.format.name.split(",")):
                    return None
                stream = container.streams.video[0]
                # Packets an MP4/MOV edit list cuts (flagged discard) are decoded but never shown: counting
                # them would shift every index after a seek by the number of cut frames.
                pts = [packet.pts for packet in container.demux(stream) if packet.size and not packet.is_discard]
        except (av.error.FFmpegError, ValueError):
            return None
        if not pts or any(p is None for p in pts) or len(set(pts)) != len(pts):
            return None
        return sorted(pts)

    def _iter_seeked(self, start: int, table: list[int]) -> Iterator[Frame]:
        import av

        index_of = {pts: i for i, pts in enumerate(table)}
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                container.seek(table[start], stream=stream, backward=True, any_frame=False)
                index = None
                for av_frame in container.decode(stream):
                    if index is None:  # the first frame decides whether the seek is usable
                        index = index_of.get(av_frame.pts)
                        if index is None or index > start:
                            raise _SeekMissError
                    else:
                        index = index_of.get(av_frame.pts, index + 1)
                    if index >= start:
                        pts = av_frame.pts if av_frame.pts is not None else table[min(index, len(table) - 1)]
                        yield _frame(index, float(pts * stream.time_base), av_frame, self._deep_now)
        except (av.error.FFmpegError, ValueError) as exc:
            raise InputError(_av_error_message(self.path, exc)) from None

    def _iter_video(self) -> Iterator[Frame]:
        import av

        index = 0
        last_time = 0.0
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for av_frame in container.decode(stream):
                    last_time = float(av_frame.time) if av_frame.time is not None else index / (self.info.fps or 25.0)
                    yield _frame(index, last_time, av_frame, self._deep_now)
                    index += 1
        except (av.error.FFmpegError, ValueError) as exc:
            raise InputError(_av_error_message(self.path, exc) + f" (after {index} frames)") from None
        if index == 0:
            raise InputError(f"cannot read {self.path}: no decodable video frames")
        declared = getattr(self, "_declared_duration", None)
        fps = self.info.fps
        if declared and fps and last_time + 1.0 / fps < declared - max(0.5, 0.1 * declared):
            raise InputError(f"{self.path} looks truncated: decoded {index} frames ({last_time + 1 / fps:.2f} s) "
                             f"of a declared {declared:.2f} s")


def _find_sequence(folder: Path):  # noqa: ANN202 - facedouble.io.sequence.ImageSequence | None
    """The full-precision image sequence in `folder` (EXR, DPX, 16-bit PNG/TIFF), None for 8-bit images."""
    from facedouble.io.sequence import find_sequence

    return find_sequence(folder)


def _bit_depth(pix_fmt: str) -> int:
    """Bits per sample of an FFmpeg pixel format (8 when unknown)."""
    import av

    try:
        return max(c.bits for c in av.VideoFormat(pix_fmt).components)
    except (ValueError, TypeError, AttributeError):
        return 8


def _frame(index: int, timestamp: float, av_frame, mode: tuple[bool, bool]) -> Frame:  # noqa: ANN001
    """A Frame from a decoded one: 8-bit RGB (derived from the full-precision RGB for a deep source), plus the
    float32 RGB as `deep` when asked for."""
    wide, keep = mode
    if not wide:
        return Frame(index, timestamp, _upright(av_frame), f"{index:06d}")
    deep = _deep_rgb(av_frame)
    return Frame(index, timestamp, to_uint8(deep), f"{index:06d}", deep if keep else None)


def _deep_rgb(av_frame) -> np.ndarray:  # noqa: ANN001 - av.VideoFrame
    """Float32 RGB (nominal 0..1, unclipped) of a >8-bit frame, upright: exact NumPy maths for planar YUV
    (facedouble.io.ycbcr: swscale's 16-bit RGB is not full scale), swscale's rgb48 for other layouts."""
    from facedouble.io.ycbcr import planar_layout, to_rgb

    if planar_layout(av_frame.format.name) is not None:
        full = int(av_frame.color_range or 0) == 2
        image = to_rgb(av_frame, int(av_frame.colorspace or 2), full)
    else:
        image = av_frame.to_ndarray(format="rgb48le").astype(np.float32) * np.float32(1 / 65535.0)
    quarter = _rotation_of(av_frame) // 90
    return np.ascontiguousarray(np.rot90(image, quarter)) if quarter else image


def to_uint8(deep: np.ndarray) -> np.ndarray:
    """round(deep / 257) of a uint16 RGB image (float: round(x * 255) clipped): the 8-bit view of a deep frame."""
    if deep.dtype == np.uint16:
        return ((deep.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return np.clip(np.rint(deep * 255.0), 0, 255).astype(np.uint8)


def _rotation_of(av_frame) -> int:
    """The frame's display rotation rounded to a quarter turn (0, 90, 180 or 270, counter-clockwise)."""
    try:
        degrees = float(av_frame.rotation or 0)
    except (AttributeError, TypeError, ValueError):  # no or unreadable display matrix: as stored
        return 0
    if degrees != degrees:  # NaN from a degenerate matrix
        return 0
    return int(round(degrees / 90.0)) % 4 * 90


def _upright(av_frame, fmt: str = "rgb24") -> np.ndarray:
    """RGB pixels of a decoded frame turned as its display matrix says (a phone's portrait clip upright).

    swscale converts with the frame's own matrix and range (a limited-range source's black, Y=16/64, comes
    out as RGB 0; a full-range one's Y=0 too): the writers convert back with the same two."""
    image = av_frame.to_ndarray(format=fmt)
    quarter = _rotation_of(av_frame) // 90
    return np.ascontiguousarray(np.rot90(image, quarter)) if quarter else image


def _first_rotation(container, stream) -> int:
    """Display rotation of the first decodable frame (0 when none decodes here; iteration reports that)."""
    import av

    try:
        for av_frame in container.decode(stream):
            return _rotation_of(av_frame)
    except (av.error.FFmpegError, ValueError):
        pass
    return 0


class _SeekMissError(Exception):
    """A seek landed after the wanted frame (imprecise index): the caller decodes from the start."""


def open_source(path: str | Path, deep: bool = False, plates: bool = False) -> FrameSource:
    """Open a video file or an image folder for reading frames; `deep=True` adds `Frame.deep` (full-precision
    RGB) for sources stored above 8 bits; `plates=True` adds `Frame.plate` for image sequences."""
    return FrameSource(path, deep=deep, plates=plates)

