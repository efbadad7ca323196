"""Rendering: crops, batched swap, per-frame compositing (worker pool) and the segment render loop."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from facedouble.colour import get_colour_transfer
from facedouble.io.atomic import atomic_write_json
from facedouble.io.video import Frame, open_source
from facedouble.log import get_logger
from facedouble.merge.blend import composite, match_edge, scale_about_centre, sharpen
from facedouble.merge.config import MergeConfig, Outputs
from facedouble.merge.hooks import MergeHooks, PrepareHook, Rendered
from facedouble.merge.masks import build_mask, hands_for_mode, refine_mask
from facedouble.merge.model import Swapper
from facedouble.merge.overrides import FaceSettings, Overrides
from facedouble.merge.plan import FaceJob, MergePlan
from facedouble.merge.region import face_masks
from facedouble.merge.sink import Ending, Sink
from facedouble.merge.workdir import segment_name, segment_records

log = get_logger("facedouble.merge")


def crop_faces(image: np.ndarray, jobs: list[FaceJob], res: int) -> list[np.ndarray]:
    """Model-input crops (uint8 RGB, res x res) of the frame's faces, with the smoothed transforms."""
    return [cv2.warpAffine(image, j.to_aligned, (res, res), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE) for j in jobs]


def composite_frame(frame: Frame, jobs: list[FaceJob], crops: list[np.ndarray], rgbs: np.ndarray,
                    learned: np.ndarray, settings: FaceSettings, res: int, warmup: bool = False) -> Rendered:
    """Masks, colour transfer, sharpen, scale and blend every face of one frame."""
    out = frame.image.copy()
    alpha = np.zeros(out.shape[:2], np.float32)
    transfer = get_colour_transfer(settings.colour)
    faces = []
    for job, crop, rgb, lm in zip(jobs, crops, rgbs, learned, strict=True):
        # None unless the mode has -hands or xseg
        hands = hands_for_mode(settings.mask, frame.image, job.to_aligned, res, job.landmarks, job.mesh)
        mask = refine_mask(build_mask(settings.mask, res, job.landmarks, job.mesh, lm, hands), settings.erode,
                           settings.blur)
        # region mode and plate parts kept (merge.region): colour statistics over the swapped region only
        stats, mask = face_masks(settings, mask, job.landmarks, job.mesh)
        plate = crop.astype(np.float32) / 255.0
        face = transfer(rgb.astype(np.float32), plate, stats)
        face = match_edge(face, plate, stats, settings.edge_match)  # no step at the mask edge (the seam)
        face = sharpen(face, settings.sharpen)
        to_frame = scale_about_centre(job.to_frame, res, settings.scale)
        box = composite(out, face, mask, to_frame, settings.blend, alpha)
        corners = np.array([[0, 0], [res, 0], [res, res], [0, res]], np.float64) @ to_frame[:, :2].T + to_frame[:, 2]
        faces.append({"track_id": job.track_id, "box_xyxy": list(box) if box else None,
                      "resolution": res, "aligned_to_frame": to_frame.tolist(),
                      "frame_to_aligned": cv2.invertAffineTransform(to_frame).tolist(),
                      "corner_pin": corners.tolist(), "settings": dataclasses.asdict(settings)})
    return Rendered(frame.index, frame.timestamp, out, frame.image, alpha, faces, warmup, frame.deep, frame.plate)


class Renderer:
    """Crops, batched inference and a compositing pool; thread-safe enough for one producer."""

    def __init__(self, model: Swapper, plan: MergePlan, overrides: Overrides, workers: int,
                 prepare: Sequence[PrepareHook] = ()):
        self.model, self.plan, self.overrides = model, plan, overrides
        self.prepare = list(prepare)  # hooks run on the compositing threads (merge.hooks)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="merge-composite")

    def _composite(self, frame: Frame, jobs: list[FaceJob], crops: list[np.ndarray], rgbs: np.ndarray,
                   learned: np.ndarray, settings: FaceSettings, res: int, warmup: bool) -> Rendered:
        rendered = composite_frame(frame, jobs, crops, rgbs, learned, settings, res, warmup)
        if self.prepare and not warmup:
            ctx = rendered.context(float(self.plan.fps), self.plan.frame_count)
            for hook in self.prepare:
                rendered.prepared.update(hook(ctx) or {})
        return rendered

    def submit(self, frames: list[Frame], warmup: list[bool]) -> list[Future]:
        """Render a batch of frames; one Future[Rendered] per frame, in order."""
        res = self.plan.resolution
        jobs = [self.plan.faces.get(f.index, []) for f in frames]
        crops = [crop_faces(f.image, j, res) for f, j in zip(frames, jobs, strict=True)]
        flat = [c for cs in crops for c in cs]
        if flat:
            rgb, learned = self.model.swap(np.stack(flat))
        else:
            rgb = learned = np.zeros((0, res, res), np.float32)
        futures, pos = [], 0
        for frame, job, crop, warm in zip(frames, jobs, crops, warmup, strict=True):
            n = len(job)
            futures.append(self.pool.submit(self._composite, frame, job, crop, rgb[pos:pos + n], learned[pos:pos + n],
                                            self.overrides.for_frame(frame.index), res, warm))
            pos += n
        return futures

    def close(self) -> None:
        """Stop the compositing pool."""
        self.pool.shutdown(wait=True, cancel_futures=True)


# Frames in flight (decoded batch + composited frames queued for the sink) are bounded by bytes, not by
# count: at 3840x2160 one frame with its target, float alpha and float32 deep copies is ~280 MB, so a fixed
# queue of 2 x batch frames would hold gigabytes. Small frames keep the count-based defaults.
IN_FLIGHT_BYTES = 1 << 30


def frame_bytes(plan: MergePlan, deep: bool, plates: bool = False) -> int:
    """Bytes one frame in flight holds: output + target RGB, float32 alpha (+ the float32 plate and render)
    (+ the source file's float32 RGB and alpha, carried to a sequence writer)."""
    pixels = plan.info.width * plan.info.height
    return pixels * (3 + 3 + 4 + (24 if deep else 0) + (16 if plates else 0))


def flow_limits(plan: MergePlan, config: MergeConfig, deep: bool, plates: bool = False) -> tuple[int, int]:
    """(frames per model batch, sink queue length) fitting IN_FLIGHT_BYTES; the config's at small sizes.

    A function of the frame size, config and outputs only, so every shard of a render batches the same way."""
    in_flight = max(2, IN_FLIGHT_BYTES // max(1, frame_bytes(plan, deep, plates)))
    batch = max(1, min(config.batch, in_flight // 2))
    return batch, max(2, min(max(4, 2 * config.batch), in_flight - batch))


def needs_deep(outputs: Outputs, config: MergeConfig) -> bool:
    """Whether frames are decoded at full precision: a 10-bit codec or face patches (16-bit) are written."""
    from facedouble.merge.writers import video_codec

    return (outputs.video is not None and video_codec(config.codec).bits > 8) or outputs.patch_dir is not None


def render_range(model: Swapper, plan: MergePlan, overrides: Overrides, config: MergeConfig, outputs: Outputs,
                 work: Path, first: int, end: int | None, hooks: MergeHooks, progress: bool) -> int:
    """Render unfinished segments in [first, end); returns frames written.

    Segments count from the first frame of the render window (`config.window`: --frames grown by the
    handles), so a range render is resumable and shardable like a whole clip."""
    done = segment_records(work)
    seg_len = config.segment_frames
    lo, hi = config.window(plan.frame_count, plan.info.first_number)
    if end is not None and all(k in done for k in range(first, end)):
        return 0
    if end is None and any(rec["last"] for k, rec in done.items() if k >= first) and \
            all(k in done for k in range(first, max(done) + 1)):
        return 0
    for d in (outputs.png_dir, outputs.matte_dir, outputs.patch_dir):
        if d is not None:
            d.mkdir(parents=True, exist_ok=True)
    deep = needs_deep(outputs, config)
    # an image-sequence output writes over the source file's own pixels: they travel with the frame (read once)
    plates = getattr(outputs, "sequence", None) is not None
    batch, queue_len = flow_limits(plan, config, deep, plates)

    def todo(seg: int) -> bool:
        return seg >= first and (end is None or seg < end) and seg not in done

    def batch_key(rel: int) -> tuple[int, int]:
        # Batches never straddle a segment, so any run renders the same batches: shard == single run.
        return rel // seg_len, (rel % seg_len) // batch

    renderer = Renderer(model, plan, overrides, config.workers, hooks.prepare)
    sink = Sink(plan, outputs, work, config, hooks, queue_len=queue_len, first_frame=lo)
    sink.start()
    pending: list[Frame] = []
    pending_key: tuple[int, int] | None = None
    t0, last_log = time.perf_counter(), 0.0
    last_rel = -1
    ending = Ending.RANGE_END

    def flush() -> None:
        if not pending:
            return
        warm = [not todo((f.index - lo) // seg_len) for f in pending]
        for fut in renderer.submit(list(pending), warm):
            if sink.error is not None:
                break
            sink.queue.put(fut)
        pending.clear()

    # Decoding starts one segment before the first unfinished one (its last batch warms the flicker
    # figure up); the reader seeks there in MP4/MOV/MKV, so a resumed run or a late shard skips the rest.
    first_todo = first
    while first_todo in done:
        first_todo += 1
    try:
        reached_end = True
        for frame in open_source(plan.clip, deep=deep, plates=plates).frames(lo + max(0, (first_todo - 1) * seg_len)):
            if sink.error is not None:
                reached_end = False
                break
            if hi is not None and frame.index > hi:  # the window's end is this render's end of clip
                break
            rel = frame.index - lo
            seg = rel // seg_len
            if end is not None and seg >= end:
                reached_end = False
                break
            last_rel = rel
            # Warm-up: the batch holding the frame just before an unfinished segment is rendered too
            # (not written), so the flicker of that segment's first frame is measured as in one run.
            needed = todo(seg) or (todo(seg + 1) and batch_key(rel) == batch_key(seg * seg_len + seg_len - 1))
            if not needed:
                continue
            key = batch_key(rel)
            if key != pending_key:
                flush()
                pending_key = key
            pending.append(frame)
            now = time.perf_counter()
            if progress and now - last_log > 5:
                log.info("merge: frame %d, %.1f frames/s", frame.index, sink.written / max(now - t0, 1e-9))
                last_log = now
        if reached_end:
            ending = Ending.EOF
        flush()
    except BaseException:
        # Ctrl-C or a model error: frames already rendered are still written, so every segment that is
        # complete is kept for the next run; the partial one is dropped.
        ending = Ending.INTERRUPTED
        raise
    finally:
        sink.finish(ending)
        renderer.close()
    if sink.error is not None:
        raise sink.error
    if ending is Ending.EOF and last_rel >= 0:
        # The clip ended exactly where an earlier, interrupted run had closed a full segment: mark it
        # as the last one now that the end of the clip has been seen.
        record_path = work / f"{segment_name(last_rel // seg_len)}.json"
        record = json.loads(record_path.read_text(encoding="utf-8")) if record_path.exists() else None
        if record is not None and not record["last"]:
            atomic_write_json(record_path, record | {"last": True})
    return sink.written
