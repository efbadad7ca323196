"""Rendering: crops, batched swap, per-frame compositing (worker pool) and the segment render loop."""

from __future__ import annotations

import dataclasses
import json
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from facedouble.colour import get_colour_transfer
from facedouble.io.atomic import atomic_write_json
from facedouble.io.video import Frame, open_source
from facedouble.log import get_logger
from facedouble.merge.blend import composite, scale_about_centre, sharpen
from facedouble.merge.config import MergeConfig, Outputs
from facedouble.merge.hooks import MergeHooks, Rendered
from facedouble.merge.masks import build_mask, hands_for_mode, refine_mask
from facedouble.merge.model import Swapper
from facedouble.merge.overrides import FaceSettings, Overrides
from facedouble.merge.plan import FaceJob, MergePlan
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
        hands = hands_for_mode(settings.mask, frame.image, job.to_aligned, res)  # None unless mode has -hands
        mask = refine_mask(build_mask(settings.mask, res, job.landmarks, job.mesh, lm, hands), settings.erode,
                           settings.blur)
        face = transfer(rgb.astype(np.float32), crop.astype(np.float32) / 255.0, mask)
        face = sharpen(face, settings.sharpen)
        to_frame = scale_about_centre(job.to_frame, res, settings.scale)
        box = composite(out, face, mask, to_frame, settings.blend, alpha)
        corners = np.array([[0, 0], [res, 0], [res, res], [0, res]], np.float64) @ to_frame[:, :2].T + to_frame[:, 2]
        faces.append({"track_id": job.track_id, "box_xyxy": list(box) if box else None,
                      "resolution": res, "aligned_to_frame": to_frame.tolist(),
                      "frame_to_aligned": cv2.invertAffineTransform(to_frame).tolist(),
                      "corner_pin": corners.tolist(), "settings": dataclasses.asdict(settings)})
    return Rendered(frame.index, frame.timestamp, out, frame.image, alpha, faces, warmup)


class Renderer:
    """Crops, batched inference and a compositing pool; thread-safe enough for one producer."""

    def __init__(self, model: Swapper, plan: MergePlan, overrides: Overrides, workers: int):
        self.model, self.plan, self.overrides = model, plan, overrides
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="merge-composite")

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
            futures.append(self.pool.submit(composite_frame, frame, job, crop, rgb[pos:pos + n], learned[pos:pos + n],
                                            self.overrides.for_frame(frame.index), res, warm))
            pos += n
        return futures

    def close(self) -> None:
        """Stop the compositing pool."""
        self.pool.shutdown(wait=True, cancel_futures=True)


def render_range(model: Swapper, plan: MergePlan, overrides: Overrides, config: MergeConfig, outputs: Outputs,
                 work: Path, first: int, end: int | None, hooks: MergeHooks, progress: bool) -> int:
    """Render unfinished segments in [first, end); returns frames written."""
    done = segment_records(work)
    seg_len, batch = config.segment_frames, config.batch
    if end is not None and all(k in done for k in range(first, end)):
        return 0
    if end is None and any(rec["last"] for k, rec in done.items() if k >= first) and \
            all(k in done for k in range(first, max(done) + 1)):
        return 0
    for d in (outputs.png_dir, outputs.matte_dir):
        if d is not None:
            d.mkdir(parents=True, exist_ok=True)

    def todo(seg: int) -> bool:
        return seg >= first and (end is None or seg < end) and seg not in done

    def batch_key(index: int) -> tuple[int, int]:
        # Batches never straddle a segment, so any run renders the same batches: shard == single run.
        return index // seg_len, (index % seg_len) // batch

    renderer = Renderer(model, plan, overrides, config.workers)
    sink = Sink(plan, outputs, work, config, hooks)
    sink.start()
    pending: list[Frame] = []
    pending_key: tuple[int, int] | None = None
    t0, last_log = time.perf_counter(), 0.0
    last_index = -1
    ending = Ending.RANGE_END

    def flush() -> None:
        if not pending:
            return
        warm = [not todo(f.index // seg_len) for f in pending]
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
        for frame in open_source(plan.clip).frames(max(0, (first_todo - 1) * seg_len)):
            if sink.error is not None:
                break
            seg = frame.index // seg_len
            if end is not None and seg >= end:
                break
            last_index = frame.index
            # Warm-up: the batch holding the frame just before an unfinished segment is rendered too
            # (not written), so the flicker of that segment's first frame is measured as in one run.
            needed = todo(seg) or (todo(seg + 1) and batch_key(frame.index) == batch_key(seg * seg_len + seg_len - 1))
            if not needed:
                continue
            key = batch_key(frame.index)
            if key != pending_key:
                flush()
                pending_key = key
            pending.append(frame)
            now = time.perf_counter()
            if progress and now - last_log > 5:
                log.info("merge: frame %d, %.1f frames/s", frame.index, sink.written / max(now - t0, 1e-9))
                last_log = now
        else:
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
    if ending is Ending.EOF and last_index >= 0:
        # The clip ended exactly where an earlier, interrupted run had closed a full segment: mark it
        # as the last one now that the end of the clip has been seen.
        record_path = work / f"{segment_name(last_index // seg_len)}.json"
        record = json.loads(record_path.read_text(encoding="utf-8")) if record_path.exists() else None
        if record is not None and not record["last"]:
            atomic_write_json(record_path, record | {"last": True})
    return sink.written
