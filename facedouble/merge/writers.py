"""Output writers: video segments and their lossless concatenation (with every audio stream of the target
copied and its timecode carried), PNG frames, 16-bit alpha mattes, RGBA face patches.

Codecs (`VIDEO_CODECS`, keyed by the `codec` setting): h264 (8-bit 4:2:0, the default), h264-10 and h265-10
(10-bit 4:2:0), prores-hq (ProRes 422 HQ, 10-bit), prores-4444 (ProRes 4444 with a 16-bit alpha: the
matte of everything merge changed) and dnxhr-hqx (DNxHR HQX, 10-bit 4:2:2). ProRes and DNxHR go in MOV.

Video is always written as closed-GOP segments of a fixed number of frames. A single run, a resumed
run and a sharded run therefore produce the same segments, and the final MP4 is a packet-level remux
of them (no re-encode), so shard + concat is bit-identical to a single run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from facedouble.errors import FacedoubleError, InternalError
from facedouble.io.atomic import atomic_write_bytes, storage_error
from facedouble.io.rotation import set_display_rotation

# FFmpeg AVColorSpace -> the matrices swscale knows (SMPTE 170M and BT.470BG are both BT.601).
_MATRIX = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}
# frame sample types on the pipe to the encoder process (little-endian, whatever the machine)
_WIRE = {np.dtype(np.uint8): np.dtype(np.uint8), np.dtype(np.uint16): np.dtype("<u2"),
         np.dtype(np.float32): np.dtype("<f4")}
_KEYINT = 250  # x265's longest GOP; a segment always starts with an IDR frame (closed GOPs)

# Read once at import: os.umask can only be read by setting it, which is not safe once threads run.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


@dataclasses.dataclass(frozen=True)
class VideoCodec:
    """One output codec: FFmpeg encoder, pixel format, options, and the containers that can hold it."""

    name: str
    encoder: str
    pix_fmt: str
    bits: int  # bits per sample written (8 or 10)
    alpha: bool  # writes the change matte as an alpha channel
    options: tuple[tuple[str, str], ...]  # encoder options (x264's crf/preset are added from the config)
    profile: str | None  # the codec context's profile (by name; the muxer picks ProRes's fourcc from it)
    containers: tuple[str, ...]  # output suffixes that can hold it
    segment_suffix: str  # the work folder's segment files
    description: str


VIDEO_CODECS: dict[str, VideoCodec] = {c.name: c for c in (
    VideoCodec("h264", "libx264", "yuv420p", 8, False, (), None, (".mp4", ".mov", ".mkv"), ".mp4",
               "H.264 8-bit 4:2:0 (x264, crf/preset)"),
    VideoCodec("h264-10", "libx264", "yuv420p10le", 10, False, (), "High 10", (".mp4", ".mov", ".mkv"),
               ".mp4", "H.264 High 10, 10-bit 4:2:0 (x264, crf/preset)"),
    VideoCodec("h265-10", "libx265", "yuv420p10le", 10, False, (), "Main 10", (".mp4", ".mov", ".mkv"),
               ".mp4", "H.265 Main 10, 10-bit 4:2:0 (x265, crf/preset; tagged hvc1 for QuickTime)"),
    VideoCodec("prores-hq", "prores_ks", "yuv422p10le", 10, False, (("vendor", "apl0"),), "HQ",
               (".mov",), ".mov", "Apple ProRes 422 HQ, 10-bit 4:2:2 (prores_ks)"),
    VideoCodec("prores-4444", "prores_ks", "yuva444p10le", 10, True,
               (("vendor", "apl0"), ("alpha_bits", "16")), "4444", (".mov",), ".mov",
               "Apple ProRes 4444, 10-bit 4:4:4 + 16-bit alpha = the change matte (prores_ks)"),
    VideoCodec("dnxhr-hqx", "dnxhd", "yuv422p10le", 10, False, (("profile", "dnxhr_hqx"),), None, (".mov",),
               ".mov", "Avid DNxHR HQX, 10-bit 4:2:2"),
)}


def video_codec(name: str) -> VideoCodec:
    """The registered codec `name`; FacedoubleError naming the choices otherwise."""
    try:
        return VIDEO_CODECS[name]
    except KeyError:
        raise FacedoubleError(f"codec must be one of {', '.join(VIDEO_CODECS)}, got {name!r}") from None


def check_output_codec(out: Path, codec: str) -> None:
    """FacedoubleError (before any work) unless the output file's container can hold `codec`."""
    spec = video_codec(codec)
    suffix = Path(out).suffix.lower()
    if suffix not in spec.containers:
        raise FacedoubleError(f"{spec.description} cannot go in a {suffix or 'suffix-less'} file ({out}); "
                              f"use {' or '.join(spec.containers)}")


def check_video_size(width: int, height: int, codec: str = "h264") -> None:
    """FacedoubleError unless the codec's pixel format can hold a width x height frame (4:2:0 and 4:2:2
    need an even width, 4:2:0 an even height)."""
    spec = video_codec(codec)
    odd_w, odd_h = width % 2, height % 2 and "420" in spec.pix_fmt
    if (odd_w and "444" not in spec.pix_fmt) or odd_h:
        raise FacedoubleError(f"{spec.encoder} {spec.pix_fmt} needs even frame sizes, got {width}x{height}: "
                              "render a PNG sequence instead (--out FOLDER)")


class SegmentWriter:
    """Encode RGB frames to one video segment (`codec` from VIDEO_CODECS; H.264 yuv420p MP4 by default); the
    file appears only on `close()`."""

    def __init__(self, path: Path, width: int, height: int, time_base: Fraction, fps: Fraction,
                 crf: int = 18, preset: str = "veryfast", threads: int = 1, colour: dict[str, int] | None = None,
                 codec: str = "h264"):
        import av

        spec = video_codec(codec)
        check_video_size(width, height, codec)
        self.spec = spec
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        suffix = spec.segment_suffix
        fd, self._tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp" + suffix, dir=self.path.parent)
        os.close(fd)
        try:
            self._container = av.open(self._tmp, "w", format=_format_for(Path("segment" + suffix)),
                                      options={"fflags": "+bitexact"})
        except BaseException:  # e.g. a full disk: leave no empty temp file behind
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)
            raise
        stream = self._container.add_stream(spec.encoder, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, spec.pix_fmt
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        # One encoder thread per segment: the compositing pool needs the cores more than the encoder does.
        # The render loop runs this in a child process (EncoderProcess): see there why.
        stream.codec_context.thread_count = threads
        options, profile = dict(spec.options), spec.profile
        if spec.encoder == "libx264":
            # trellis=1 (medium's default, off in the faster presets) keeps the faint keyed watermark through
            # quantisation: on a blurry face at veryfast, per-frame bit agreement at the 10th percentile goes
            # from 0.69 to 0.92 for ~9 % more bytes (measured on a GRID render, crf 18).
            options |= {"crf": str(crf), "preset": preset,
                        "x264-params": f"open-gop=0:threads={threads}:trellis=1"}
            if crf == 0 and spec.bits > 8:  # crf 0 is lossless at 8 bits only; qp 0 (High 4:4:4) is at any depth
                options = {k: v for k, v in options.items() if k != "crf"} | {"qp": "0"}
                profile = None
        elif spec.encoder == "libx265":
            # closed GOPs (segments are joined by remuxing), one frame thread and no pools: reproducible; no
            # B-frames: with them this libx265 build sometimes hands out packets without timestamps and the MP4
            # muxer then fails at the end of the segment ("not yet implemented")
            options |= {"crf": str(crf), "preset": preset,
                        "x265-params": f"open-gop=0:frame-threads=1:pools=none:log-level=error:bframes=0:"
                                       f"keyint={_KEYINT}:min-keyint=1" + (":lossless=1" if crf == 0 else "")}
        stream.options = options
        if profile:
            stream.codec_context.profile = profile
        # Encode with the matrix the target was decoded with, and tag it the same, so pixels outside the
        # face keep their YUV values and players show them as they showed the target.
        colour = colour or {}
        self._colorspace = _MATRIX.get(colour.get("colorspace", 2))
        self._tag_colorspace = int(colour.get("colorspace", 2))
        self._range = 2 if colour.get("color_range") == 2 else 1  # JPEG (full) or MPEG (limited)
        cc = stream.codec_context
        for key in ("colorspace", "color_primaries", "color_trc"):
            if colour.get(key, 2) != 2:  # 2 = unspecified: leave untagged, as the target was
                setattr(cc, key, colour[key])
        cc.color_range = self._range
        self._stream = stream
        self._time_base = time_base
        self.frames = 0

    def write(self, image: np.ndarray, pts: int) -> None:
        """Encode one frame at presentation time `pts` (in the writer's time base): RGB uint8, or for the
        10-bit codecs also uint16 (0..65535) or float32 (nominal 0..1) RGB, or RGBA (alpha written by codecs
        that carry one, dropped by the others)."""
        import av

        if self.spec.bits > 8:
            # exact maths (facedouble.io.ycbcr), the inverse of the reader's: untouched pixels keep their codes
            from facedouble.io.ycbcr import from_rgb

            alpha = None
            if image.shape[2] == 4:
                scale = {np.dtype(np.uint8): 1 / 255.0, np.dtype(np.uint16): 1 / 65535.0}.get(image.dtype, 1.0)
                alpha = image[..., 3].astype(np.float32) * np.float32(scale) if self.spec.alpha else None
                image = image[..., :3]
            frame = from_rgb(image, self.spec.pix_fmt, self._tag_colorspace, self._range == 2, alpha)
        else:
            image = np.ascontiguousarray(image[..., :3] if image.shape[2] == 4 else image)
            rgb = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame = rgb.reformat(format=self.spec.pix_fmt, dst_colorspace=self._colorspace,
                                 dst_color_range=self._range)
        frame.pts, frame.time_base = int(pts), self._time_base
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        """Flush, close and move the finished segment into place."""
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        _publish(self._tmp, self.path)

    def abort(self) -> None:
        """Drop the unfinished segment."""
        with contextlib.suppress(Exception):
            self._container.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)


class EncoderProcess:
    """Runs `SegmentWriter`s in a child process (`python -P -m facedouble.merge.writers`), one segment
    after another.

    x264 inside the multi-threaded render process sometimes produced a slightly different bitstream
    for byte-identical frames (seen at 360x288; not fixed by one encoder thread, zeroed row padding or
    mod-16 padding); in a process of its own it is deterministic, so shard + concat is byte-identical
    to a single run. A plain subprocess rather than multiprocessing: spawn would re-import the
    caller's main script. Messages on stdin: 1-byte kind, 8-byte length, payload (JSON or raw
    frame bytes; no pickle); replies on stdout.
    """

    def __init__(self) -> None:
        # The child sees exactly the parent's import path. -P (Python 3.11+) stops `python -m` from
        # putting the working directory first, so a stray numpy.py or av.py where the user runs the
        # command is never imported (and run) by the encoder.
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self._proc = subprocess.Popen([sys.executable, "-P", "-m", "facedouble.merge.writers"],
                                      stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, env=env, start_new_session=True)
        self._shape: tuple[int, int] | None = None
        self._path: Path | None = None

    def _send(self, kind: bytes, payload: bytes = b"") -> None:
        try:
            self._proc.stdin.write(kind + len(payload).to_bytes(8, "little") + payload)
        except (BrokenPipeError, OSError, ValueError):
            raise InternalError("the video encoder process stopped unexpectedly") from None

    def open(self, path: Path, width: int, height: int, time_base: Fraction, fps: Fraction, crf: int = 18,
             preset: str = "veryfast", threads: int = 1, colour: dict[str, int] | None = None,
             codec: str = "h264") -> None:
        """Start a segment (same arguments as SegmentWriter)."""
        check_video_size(width, height, codec)
        params = {"path": str(path), "width": width, "height": height, "time_base": str(time_base),
                  "fps": str(fps), "crf": crf, "preset": preset, "threads": threads, "colour": colour or {},
                  "codec": codec}
        self._shape, self._path = (height, width), Path(path)
        self._send(b"o", json.dumps(params).encode())

    def write(self, image: np.ndarray, pts: int) -> None:
        """Queue one RGB or RGBA frame, uint8 or uint16 (errors are reported by `close`)."""
        if image.shape[:2] != self._shape:
            raise FacedoubleError(f"frame size {image.shape[1]}x{image.shape[0]} differs from the segment's")
        wire = _WIRE.get(image.dtype)
        if wire is None or image.ndim != 3 or image.shape[2] not in (3, 4):
            raise InternalError(f"the encoder takes RGB(A) uint8/uint16/float32 frames, not {image.dtype} "
                                f"{image.shape}")
        head = int(pts).to_bytes(8, "little", signed=True) + bytes([image.shape[2], wire.itemsize])
        self._send(b"f", head + np.ascontiguousarray(image).astype(wire, copy=False).tobytes())

    def close(self) -> None:
        """Finish the segment; raises FacedoubleError if the encoder failed (a full or read-only disk
        gives the same one-line error as every other writer; the unfinished segment is dropped)."""
        self._send(b"c")
        try:
            self._proc.stdin.flush()
            size = int.from_bytes(_read_exact(self._proc.stdout, 8), "little")
            reply = _read_exact(self._proc.stdout, size)
        except (EOFError, OSError, ValueError):
            raise InternalError("the video encoder process stopped unexpectedly") from None
        if reply != b"ok":
            raise _encoder_error(reply, self._path)

    def abort(self) -> None:
        """Drop the unfinished segment."""
        with contextlib.suppress(FacedoubleError):
            self._send(b"a")

    def shutdown(self) -> None:
        """Stop the child process."""
        with contextlib.suppress(FacedoubleError, OSError, ValueError):
            self._send(b"q")
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc.stdout.close()


def _encoder_error(reply: bytes, path: Path | None) -> FacedoubleError:
    """The parent's one-line error for the child's failure reply (JSON: errno, message)."""
    try:
        failure = json.loads(reply)
        number, message = failure.get("errno"), str(failure["message"])
    except (ValueError, KeyError, TypeError, AttributeError):
        number, message = None, reply.decode(errors="replace")
    if isinstance(number, int) and (error := storage_error(path or "a video segment", OSError(number, message))):
        return error
    return InternalError(f"video encoding failed: {' '.join(message.split())}")


def _failure(exc: Exception) -> str:
    """What the child tells the parent about `exc`: its errno (PyAV's errors carry one) and text."""
    number = getattr(exc, "errno", None)
    return json.dumps({"errno": number if isinstance(number, int) else None,
                       "message": f"{type(exc).__name__}: {exc}"})


def _read_exact(stream, size: int) -> bytes:  # noqa: ANN001 - binary file
    data = stream.read(size)
    if len(data) != size:
        raise EOFError
    return data


def _encoder_main() -> None:
    """Child-process loop of EncoderProcess: read commands on stdin, reply to `close` on stdout."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is handled by the parent, which aborts us
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    writer: SegmentWriter | None = None
    error: str | None = None
    shape = (0, 0)
    while True:
        try:
            kind = _read_exact(stdin, 1)
            body = _read_exact(stdin, int.from_bytes(_read_exact(stdin, 8), "little"))
        except EOFError:
            break
        try:
            if kind == b"o":
                p = json.loads(body)
                error = None
                shape = (p["height"], p["width"])
                writer = SegmentWriter(Path(p["path"]), p["width"], p["height"], Fraction(p["time_base"]),
                                       Fraction(p["fps"]), p["crf"], p["preset"], p["threads"],
                                       {k: int(v) for k, v in p["colour"].items()}, p.get("codec", "h264"))
            elif kind == b"f" and writer is not None and error is None:
                pts = int.from_bytes(body[:8], "little", signed=True)
                channels, itemsize = body[8], body[9]
                dtype = {1: np.dtype(np.uint8), 2: np.dtype("<u2"), 4: np.dtype("<f4")}[itemsize]
                writer.write(np.frombuffer(body[10:], dtype).reshape(*shape, channels).astype(
                    dtype.newbyteorder("="), copy=False), pts)
            elif kind == b"c":
                # Always reply, whatever closing does: the parent blocks on this answer. (A full disk
                # mostly strikes here, when the muxer flushes and writes the moov atom.)
                if writer is not None and error is None:
                    try:
                        writer.close()
                    except Exception as exc:
                        error = _failure(exc)
                if writer is not None and error is not None:
                    writer.abort()
                writer = None
                reply = b"ok" if error is None else error.encode()
                error = None
                stdout.write(len(reply).to_bytes(8, "little") + reply)
                stdout.flush()
            elif kind == b"a":
                if writer is not None:
                    writer.abort()
                writer = None
            elif kind == b"q":
                break
        except Exception as exc:  # reported to the parent at the next close
            error = _failure(exc)
    if writer is not None:
        writer.abort()


def concat_segments(segments: Sequence[Path], out: Path, audio_from: Path | None = None,
                    metadata: dict[str, str] | None = None, timecode: str | None = None,
                    fps: Fraction | None = None, audio_window: tuple[float, float | None] | None = None,
                    video_shift: int = 0, rotation: int = 0) -> None:
    """Remux video `segments` (in order) into `out`, copying every audio stream of `audio_from`.

    Packets are copied unchanged (lossless); `video_shift` (in the segments' time base) is taken off every
    video timestamp, so a `--frames` range starting late begins at time 0. `timecode` (SMPTE, of the first
    output frame) is written as the MOV/MP4 tmcd track, which needs the frame rate `fps`. `audio_window` =
    (start, end) in the clip's seconds keeps only the audio packets overlapping the rendered frames (packet
    granularity), shifted like the video. `rotation` is the plate's display rotation (degrees counter-clockwise,
    as the frame reader found it): the output carries the same display matrix (facedouble.io.rotation).
    `out` is written atomically.
    """
    import av

    if not segments:
        raise FacedoubleError("no video segments to concatenate")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp" + out.suffix, dir=out.parent)
    os.close(fd)
    inputs = []
    try:
        inputs = [av.open(str(p)) for p in segments]
        extradata = inputs[0].streams.video[0].codec_context.extradata
        for path, container in zip(segments, inputs, strict=True):
            if container.streams.video[0].codec_context.extradata != extradata:
                raise FacedoubleError(f"segment {path.name} was encoded with different settings; delete "
                                      "the work folder and render again")
        options = {"fflags": "+bitexact"}
        fmt = _format_for(out)
        if fmt in ("mp4", "mov"):
            options["movflags"] = "use_metadata_tags"  # keeps custom tags (the render record)
        vin0 = inputs[0].streams.video[0]
        shift = int(video_shift)
        with av.open(tmp, "w", format=fmt, options=options) as output:
            for key, value in (metadata or {}).items():
                output.metadata[key] = value
            try:
                vout = output.add_stream_from_template(vin0)
            except ValueError as exc:  # e.g. ProRes segments joined into an .mp4
                raise FacedoubleError(f"cannot write {out.name}: {exc}; use a .mov output") from None
            set_display_rotation(vout, rotation)  # the plate's display matrix (io.rotation)
            if vin0.codec_context.name == "hevc" and fmt in ("mp4", "mov"):
                vout.codec_context.codec_tag = "hvc1"  # QuickTime and Resolve play only hvc1-tagged HEVC
            elif vin0.codec_context.name == "prores":  # the fourcc names the ProRes flavour (ap4h = 4444)
                vout.codec_context.codec_tag = vin0.codec_context.codec_tag
            if fps:
                vout.codec_context.framerate = Fraction(fps)  # avg_frame_rate: the tmcd track needs it
            if timecode and fmt in ("mp4", "mov"):
                vout.metadata["timecode"] = timecode
            audio_in = av.open(str(audio_from)) if audio_from is not None else None
            try:
                aouts = []
                for stream in (audio_in.streams.audio if audio_in is not None else ()):
                    try:
                        aouts.append((stream, output.add_stream_from_template(stream)))
                    except ValueError as exc:  # e.g. PCM audio into an .mp4
                        raise FacedoubleError(f"cannot copy audio stream {stream.index} ({stream.codec_context.name})"
                                              f" into {out.name}: {exc}; use a .mov output") from None
                for container in inputs:
                    for packet in container.demux(container.streams.video[0]):
                        if packet.dts is None:  # flush marker
                            continue
                        if shift:
                            packet.pts, packet.dts = packet.pts - shift, packet.dts - shift
                        packet.stream = vout
                        output.mux(packet)
                _copy_audio(audio_in, aouts, output, audio_window)
            finally:
                if audio_in is not None:
                    audio_in.close()
        _publish(tmp, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    finally:
        for container in inputs:
            container.close()


def _copy_audio(source, pairs, output, window: tuple[float, float | None] | None) -> None:  # noqa: ANN001
    """Copy the audio streams' packets in one demuxing pass (in file order); with a window, only the packets
    overlapping it, each stream shifted so its first kept packet starts at 0."""
    if not pairs:
        return
    targets = {stream.index: aout for stream, aout in pairs}
    shifts: dict[int, int] = {}
    for packet in source.demux(*[stream for stream, _ in pairs]):
        if packet.dts is None:
            continue
        stream = packet.stream
        if window is not None and stream.time_base and packet.pts is not None:
            lo = int(round(window[0] / stream.time_base))
            hi = int(round(window[1] / stream.time_base)) if window[1] is not None else None
            if packet.pts + (packet.duration or 0) <= lo or (hi is not None and packet.pts >= hi):
                continue
            shift = shifts.setdefault(stream.index, packet.pts - (stream.start_time or 0))
            packet.pts, packet.dts = packet.pts - shift, packet.dts - shift
        packet.stream = targets[stream.index]
        output.mux(packet)


def _publish(tmp: str, path: Path) -> None:
    """Give the finished temp file normal permissions (mkstemp makes it 0600) and rename it into place."""
    os.chmod(tmp, 0o666 & ~_UMASK)
    os.replace(tmp, path)


def _format_for(path: Path) -> str:
    return {".mov": "mov", ".mkv": "matroska"}.get(path.suffix.lower(), "mp4")


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Atomic lossless PNG of an RGB uint8 frame."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise InternalError(f"could not encode {path}")
    atomic_write_bytes(path, buf.tobytes())


def write_matte(path: Path, alpha: np.ndarray) -> None:
    """Atomic 16-bit greyscale PNG matte (alpha in [0, 1]); 16 bits so soft edges do not band."""
    data = np.clip(np.rint(alpha * 65535.0), 0, 65535).astype(np.uint16)
    ok, buf = cv2.imencode(".png", data, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise InternalError(f"could not encode {path}")
    atomic_write_bytes(path, buf.tobytes())


def write_patch(path: Path, rgb: np.ndarray, cover: np.ndarray) -> dict[str, int] | None:
    """Atomic 16-bit RGBA PNG of the frame's changed area: the render's pixels (straight, not premultiplied)
    and the matte of everything merge changed as alpha, cropped to the matte's box. Returns the box
    {x, y, w, h} in frame pixels (the patch's top-left corner goes at x, y), None (nothing written) when
    merge changed nothing in this frame. uint8 RGB is scaled to 16 bits (x 257); float RGB is clipped to
    0..1 (a float plate's patch belongs in EXR)."""
    ys, xs = np.nonzero(cover > 0)
    if not len(ys):
        return None
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    crop = rgb[y0:y1, x0:x1]
    if crop.dtype == np.uint8:
        crop16 = crop.astype(np.uint16) * 257
    elif crop.dtype == np.uint16:
        crop16 = crop
    else:
        crop16 = np.clip(np.rint(crop * 65535.0), 0, 65535).astype(np.uint16)
    alpha = np.clip(np.rint(cover[y0:y1, x0:x1] * 65535.0), 0, 65535).astype(np.uint16)
    bgra = np.concatenate([crop16[..., ::-1], alpha[..., None]], axis=2)
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(bgra), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise InternalError(f"could not encode {path}")
    atomic_write_bytes(path, buf.tobytes())
    return {"x": x0, "y": y0, "w": x1 - x0, "h": y1 - y0}


def timecode_add(timecode: str, frames: int, fps: Fraction) -> str:
    """SMPTE timecode `frames` frames after `timecode` at `fps` (drop-frame, "HH:MM:SS;FF", for 29.97/59.94)."""
    import re

    match = re.fullmatch(r"(\d+):(\d\d):(\d\d)([:;.,])(\d\d)", timecode.strip())
    if not match or not frames:
        return timecode
    h, m, sec, sep, ff = match.groups()
    nominal = round(float(fps)) or 25
    drop = sep in ";," and nominal in (30, 60)
    dropped = 2 * nominal // 30  # frame numbers skipped each minute but every tenth
    minutes = int(h) * 60 + int(m)
    number = (minutes * 60 + int(sec)) * nominal + int(ff)
    if drop:
        number -= dropped * (minutes - minutes // 10)
    number += frames
    if drop:  # back from a frame count to a drop-frame label
        per10 = nominal * 600 - dropped * 9
        tens, rest = divmod(number, per10)
        number += dropped * 9 * tens
        if rest > dropped:
            number += dropped * ((rest - dropped) // (nominal * 60 - dropped))
    ff_out = number % nominal
    total = number // nominal
    return f"{total // 3600 % 24:02d}:{total // 60 % 60:02d}:{total % 60:02d}{sep}{ff_out:02d}"


if __name__ == "__main__":
    _encoder_main()
