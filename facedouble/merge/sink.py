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

from facedouble.io.atomic import atomic_write_json
from facedouble.merge.config import MergeConfig, Outputs
from facedouble.merge.flicker import flicker_pair
from facedouble.merge.hooks import FrameContext, MergeHooks, Rendered
from facedouble.merge.plan import MergePlan
from facedouble.merge.workdir import PLAN_FILE, segment_name
from facedouble.merge.writers import EncoderProcess, write_matte, write_png


class Ending(enum.Enum):
    """How the producer stopped feeding the sink."""

    RANGE_END = "range_end"  # the shard's range is done; the clip goes on
    EOF = "eof"  # the clip's end was reached: the open segment is the last one
    INTERRUPTED = "interrupted"  # Ctrl-C or an error: write what was rendered, keep whole segments only


class Sink(threading.Thread):
    """Consumes rendered frames in order: hooks, flicker, PNG/matte/video writing, segment records."""

    def __init__(self, plan: MergePlan, outputs: Outputs, work: Path, config: MergeConfig, hooks: MergeHooks):
        super().__init__(name="merge-sink", daemon=True)
        self.plan, self.outputs, self.work, self.config, self.hooks = plan, outputs, work, config, hooks
        self.queue: queue.Queue[Future | None] = queue.Queue(maxsize=max(4, 2 * config.batch))
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

    def finish(self, ending: Ending) -> None:
        """Tell the sink how the run ended, then wait for it to write everything queued.

        `ending` is set before the sentinel is queued, so the thread sees it when it reaches the end.
        """
        self.ending = ending
        self.queue.put(None)
        self.join()

    def run(self) -> None:
        """Thread body: consume until the None sentinel; errors are kept for the main thread."""
        try:
            while True:
                item = self.queue.get()
                if item is None:
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
            while self.queue.get() is not None:  # drain so the producer never blocks
                pass
        finally:
            if self.writer is not None:
                self.writer.abort()
            if self.encoder is not None:
                self.encoder.shutdown()

    def consume(self, r: Rendered) -> None:
        """Hooks, flicker statistics and writing of one rendered frame."""
        ctx = FrameContext(r.index, r.timestamp, r.image, r.target, r.alpha, r.faces, float(self.plan.fps),
                           self.plan.frame_count, r.warmup)
        for hook in self.hooks.post_composite:
            replaced = hook(ctx)
            if replaced is not None:
                ctx.image = replaced
        r.image = ctx.image
        pair = flicker_pair(self.prev, r) if self.prev is not None and self.prev.index == r.index - 1 else None
        self.prev = r
        if r.warmup:
            return
        seg = r.index // self.config.segment_frames
        if seg != self.segment:
            self.close_segment(last=False)
            self.segment = seg
            if self.outputs.video is not None:
                if self.encoder is None:
                    self.encoder = EncoderProcess()
                self.encoder.open(self.work / f"{segment_name(seg)}.mp4", self.plan.info.width,
                                  self.plan.info.height, self.plan.time_base, self.plan.fps, self.config.crf,
                                  self.config.x264_preset, threads=1, colour=self.plan.colour)
                self.writer = self.encoder
        name = f"{r.index:06d}.png"
        if self.outputs.png_dir is not None:
            write_png(self.outputs.png_dir / name, r.image)
        if self.outputs.matte_dir is not None:
            write_matte(self.outputs.matte_dir / name, r.alpha)
        pts = self.plan.pts(r.timestamp, r.index)
        if self.writer is not None:
            self.writer.write(r.image, pts)
        self.records.append({"index": r.index, "timestamp": r.timestamp, "pts": pts, "faces": r.faces,
                             "flicker": list(pair) if pair else None})
        self.written += 1

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
