"""Output writers: H.264 segments and their lossless concatenation (with the target's audio copied),
PNG frames, 16-bit alpha mattes, and the per-frame transforms JSON.

Video is always written as closed-GOP segments of a fixed number of frames. A single run, a resumed
run and a sharded run therefore produce the same segments, and the final MP4 is a packet-level remux
of them (no re-encode), so shard + concat is bit-identical to a single run.
"""

from __future__ import annotations

import contextlib
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

# FFmpeg AVColorSpace -> the matrices swscale knows (SMPTE 170M and BT.470BG are both BT.601).
_MATRIX = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}

# Read once at import: os.umask can only be read by setting it, which is not safe once threads run.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def check_video_size(width: int, height: int) -> None:
    """FacedoubleError unless H.264 yuv420p can hold a width x height frame (both even)."""
    if width % 2 or height % 2:
        raise FacedoubleError(f"H.264 yuv420p needs even frame sizes, got {width}x{height}: render a PNG "
                              "sequence instead (--out FOLDER)")


class SegmentWriter:
    """Encode RGB frames to one H.264 (yuv420p) MP4 segment; the file appears only on `close()`."""

    def __init__(self, path: Path, width: int, height: int, time_base: Fraction, fps: Fraction,
                 crf: int = 18, preset: str = "veryfast", threads: int = 1, colour: dict[str, int] | None = None):
        import av

        check_video_size(width, height)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp.mp4", dir=self.path.parent)
        os.close(fd)
        try:
            self._container = av.open(self._tmp, "w", format="mp4", options={"fflags": "+bitexact"})
        except BaseException:  # e.g. a full disk: leave no empty temp file behind
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)
            raise
        stream = self._container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        # One x264 thread per segment: the compositing pool needs the cores more than the encoder does.
        # The render loop runs this in a child process (EncoderProcess): see there why.
        stream.codec_context.thread_count = threads
        # trellis=1 (medium's default, off in the faster presets) keeps the faint keyed watermark through
        # quantisation: on a blurry face at veryfast, per-frame bit agreement at the 10th percentile goes from
        # 0.69 to 0.92 for ~9 % more bytes (measured on a GRID render, crf 18).
        stream.options = {"crf": str(crf), "preset": preset,
                          "x264-params": f"open-gop=0:threads={threads}:trellis=1"}
        # Encode with the matrix the target was decoded with, and tag it the same, so pixels outside the
        # face keep their YUV values and players show them as they showed the target.
        colour = colour or {}
        self._colorspace = _MATRIX.get(colour.get("colorspace", 2))
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
        """Encode one RGB uint8 frame at presentation time `pts` (in the writer's time base)."""
        import av

        rgb = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame = rgb.reformat(format="yuv420p", dst_colorspace=self._colorspace, dst_color_range=self._range)
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
             preset: str = "veryfast", threads: int = 1, colour: dict[str, int] | None = None) -> None:
        """Start a segment (same arguments as SegmentWriter)."""
        check_video_size(width, height)
        params = {"path": str(path), "width": width, "height": height, "time_base": str(time_base),
                  "fps": str(fps), "crf": crf, "preset": preset, "threads": threads, "colour": colour or {}}
        self._shape, self._path = (height, width), Path(path)
        self._send(b"o", json.dumps(params).encode())

    def write(self, image: np.ndarray, pts: int) -> None:
        """Queue one RGB uint8 frame (errors are reported by `close`)."""
        if image.shape[:2] != self._shape:
            raise FacedoubleError(f"frame size {image.shape[1]}x{image.shape[0]} differs from the segment's")
        self._send(b"f", int(pts).to_bytes(8, "little", signed=True) + np.ascontiguousarray(image).tobytes())

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
                                       {k: int(v) for k, v in p["colour"].items()})
            elif kind == b"f" and writer is not None and error is None:
                pts = int.from_bytes(body[:8], "little", signed=True)
                writer.write(np.frombuffer(body[8:], np.uint8).reshape(*shape, 3), pts)
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
                    metadata: dict[str, str] | None = None) -> None:
    """Remux H.264 `segments` (in order) into `out`, copying the audio of `audio_from` if it has any.

    Packets are copied unchanged (lossless). `out` is written atomically.
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
        if _format_for(out) in ("mp4", "mov"):
            options["movflags"] = "use_metadata_tags"  # keeps custom tags (the render record)
        with av.open(tmp, "w", format=_format_for(out), options=options) as output:
            for key, value in (metadata or {}).items():
                output.metadata[key] = value
            vout = output.add_stream_from_template(inputs[0].streams.video[0])
            audio_in = av.open(str(audio_from)) if audio_from is not None else None
            try:
                aout = None
                if audio_in is not None and audio_in.streams.audio:
                    aout = output.add_stream_from_template(audio_in.streams.audio[0])
                for container in inputs:
                    for packet in container.demux(container.streams.video[0]):
                        if packet.dts is None:  # flush marker
                            continue
                        packet.stream = vout
                        output.mux(packet)
                if aout is not None:
                    for packet in audio_in.demux(audio_in.streams.audio[0]):
                        if packet.dts is None:
                            continue
                        packet.stream = aout
                        output.mux(packet)
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


if __name__ == "__main__":
    _encoder_main()
