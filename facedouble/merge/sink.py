"""The sink thread: post-composite hooks, flicker and in-order writing of rendered frames, by segment.

How a run ended is told to the sink once, explicitly, by `Sink.finish(Ending)`; the producer no
longer flips flags on it.
"""

from __future__ import annotations

import enum
import json
import queue
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np

from facedouble.io.atomic import atomic_write_json
from facedouble.io.rotation import stored_orientation
from facedouble.merge.config import MergeConfig, Outputs
from facedouble.merge.flicker import flicker_pair
from facedouble.merge.hooks import MergeHooks, Rendered
from facedouble.merge.plan import MergePlan
from facedouble.merge.workdir import PLAN_FILE, segment_name
from facedouble.merge.writers import EncoderProcess, video_codec, write_matte, write_patch, write_png


class Ending(enum.Enum):
    """How the producer stopped feeding the sink."""

    RANGE_END = "range_end"  # the shard's range is done; the clip goes on
    EOF = "eof"  # the clip's end was reached: the open segment is the last one
    INTERRUPTED = "interrupted"  # Ctrl-C or an error: write what was rendered, keep whole segments only


class Sink(threading.Thread):
    """Consumes rendered frames in order: hooks, flicker, PNG/matte/video writing, segment records."""

    def __init__(self, plan: MergePlan, outputs: Outputs, work: Path, config: MergeConfig, hooks: MergeHooks,
                 queue_len: int | None = None, first_frame: int = 0):
        super().__init__(name="merge-sink", daemon=True)
        self.plan, self.outputs, self.work, self.config, self.hooks = plan, outputs, work, config, hooks
        self.queue: queue.Queue[Future | None] = queue.Queue(maxsize=queue_len or max(4, 2 * config.batch))
        self.first_frame = first_frame  # the render window's first source frame: segment 0 starts there
        self.codec = video_codec(config.codec)
        self.error: BaseException | None = None
        self.prev: Rendered | None = None
        self.segment: int | None = None
        self.encoder: EncoderProcess | None = None  # started with the first video segment
        self.writer: EncoderProcess | None = None  # the encoder while a segment is open
        self.records: list[dict[str, Any]] = []
        self.written = 0
        self.stop_requested = False  # the sink failed: skip everything (set by the sink thread only)
        self.ending = Ending.RANGE_END  # how the producer stopped; set once, by finish()
        self.fingerprint = json.loads((work / PLAN_FILE).read_text(encoding="utf-8"))["fingerprint"]
        self.sequence_out = None  # an image-sequence OUT (EXR/DPX/PNG16/TIFF): it re-reads the float plates
        if outputs.sequence is not None:
            from facedouble.io.video import open_source
            from facedouble.merge.seqwriters import SequenceOutput

            self.sequence_out = SequenceOutput(outputs.sequence, open_source(plan.clip))
            self.sequence_out.check_work(work)

    def finish(self, ending: Ending) -> None:
        """Tell the sink how the run ended, then wait for it to write everything queued.

        `ending` is set before the sentinel is queued, so the thread sees it when it reaches the end.
        """
        self.ending = ending
        self.queue.put(None)
        self.join()

    def run(self) -> None:
        """Thread body: consume until the None sentinel; errors are kept for the main thread."""
        ended = False  # the sentinel was taken: an error after it (closing the last segment) must not wait for it
        try:
            while True:
                item = self.queue.get()
                if item is None:
                    ended = True
                    break
                if self.stop_requested:
                    continue
                self.consume(item.result())
            if self.ending is Ending.INTERRUPTED:
                if len(self.records) == self.config.segment_frames:  # complete: keep it
                    self.close_segment(last=False)
            elif not self.stop_requested:
                self.close_segment(last=self.ending is Ending.EOF)
        except BaseException as exc:  # handed to the main thread
            self.error = exc
            self.stop_requested = True
            while not ended and self.queue.get() is not None:  # drain so the producer never blocks
                pass
        finally:
            if self.writer is not None:
                self.writer.abort()
            if self.encoder is not None:
                self.encoder.shutdown()

    def consume(self, r: Rendered) -> None:
        """Hooks, flicker statistics and writing of one rendered frame."""
        ctx = r.context(float(self.plan.fps), self.plan.frame_count)
        for hook in self.hooks.post_composite:
            replaced = hook(ctx)
            if replaced is not None:
                ctx.image = replaced
        r.image = ctx.image
        pair = flicker_pair(self.prev, r) if self.prev is not None and self.prev.index == r.index - 1 else None
        self.prev = r
        if r.warmup:
            return
        seg = (r.index - self.first_frame) // self.config.segment_frames
        if seg != self.segment:
            self.close_segment(last=False)
            self.segment = seg
            if self.outputs.video is not None:
                if self.encoder is None:
                    # a rotated (phone) plate's frames are encoded as it stores them (facedouble.io.rotation)
                    self.encoder = stored_orientation(EncoderProcess(), self.plan.info.rotation)
                self.encoder.open(self.work / f"{segment_name(seg)}{self.codec.segment_suffix}",
                                  self.plan.info.width, self.plan.info.height, self.plan.time_base, self.plan.fps,
                                  self.config.crf, self.config.x264_preset, threads=1, colour=self.plan.colour,
                                  codec=self.codec.name)
                self.writer = self.encoder
        # Everything merge changed (the faces' blend, the watermark around them, a label): the matte covers it,
        # so the render over the plate with this matte is the render.
        changed = np.any(r.image != r.target, axis=2)
        cover = np.maximum(r.alpha, changed, dtype=np.float32)
        deep = lift_deep(r.deep, r.target, r.image, changed) if r.deep is not None else None
        name = f"{r.index:06d}.png"
        if self.outputs.png_dir is not None:
            write_png(self.outputs.png_dir / name, r.image)
        if self.outputs.matte_dir is not None:
            write_matte(self.outputs.matte_dir / name, cover)
        patch = None
        if self.outputs.patch_dir is not None:
            patch = write_patch(self.outputs.patch_dir / name, deep if deep is not None else r.image, cover)
        if self.sequence_out is not None:
            self.sequence_out.write(r.index, r.image, r.target, r.alpha, cover, plate=r.plate)
        pts = self.plan.pts(r.timestamp, r.index)
        if self.writer is not None:
            self.writer.write(self._video_frame(r.image, deep, cover), pts)
        self.records.append({"index": r.index, "timestamp": r.timestamp, "pts": pts, "faces": r.faces,
                             "flicker": list(pair) if pair else None, "patch": patch})
        self.written += 1

    def _video_frame(self, image: np.ndarray, deep: np.ndarray | None, cover: np.ndarray) -> np.ndarray:
        """What the encoder gets: 8-bit RGB for 8-bit codecs; the full-precision RGB (+ the matte as alpha,
        float32 RGBA) otherwise."""
        if self.codec.bits <= 8:
            return image
        rgb = deep if deep is not None else image
        if not self.codec.alpha:
            return rgb
        if rgb.dtype != np.float32:
            rgb = rgb.astype(np.float32) * np.float32(1 / (255.0 if rgb.dtype == np.uint8 else 65535.0))
        return np.concatenate([rgb, cover[..., None].astype(np.float32)], axis=2)

    def close_segment(self, last: bool) -> None:
        """Finish the open segment: video file first, then its record (the record marks it done)."""
        if self.segment is None:
            return
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        atomic_write_json(self.work / f"{segment_name(self.segment)}.json",
                          {"segment": self.segment, "last": last, "fingerprint": self.fingerprint,
                           "frames": self.records})
        self.records = []
        self.segment = None


def lift_deep(deep: np.ndarray, target: np.ndarray, image: np.ndarray, changed: np.ndarray) -> np.ndarray:
    """The render at the target's full precision: `deep` itself where merge changed nothing (bit-identical),
    and where it did, `deep` plus the change of the 8-bit image (x 257 for uint16, / 255 for float), so the
    face keeps the plate's sub-8-bit detail around its new values."""
    out = deep.copy()
    if not changed.any():
        return out
    delta = image[changed].astype(np.int32) - target[changed].astype(np.int32)
    if deep.dtype == np.uint16:
        out[changed] = np.clip(deep[changed].astype(np.int32) + delta * 257, 0, 65535).astype(np.uint16)
    else:
        # the new 8-bit value plus the plate's sub-8-bit residual, kept inside its 8-bit step (a super-white
        # or sub-black plate pixel the face covers takes the face's value), so round(out * 255) == image
        residual = np.clip(deep[changed] * 255.0 - target[changed], -0.499, 0.499)
        out[changed] = ((image[changed] + residual) / 255.0).astype(deep.dtype)
    return out
