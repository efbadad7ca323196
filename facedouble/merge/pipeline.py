"""The merge render loop: decode -> crop -> batched swap -> masks/colour/blend (worker pool) -> hooks
-> writers, in closed-GOP segments that make the run resumable and shardable.

Threads: the main thread decodes, crops and runs the model (torch has its own intra-op threads); a
pool composites frames in parallel (OpenCV and NumPy release the GIL); one sink thread runs the
post-composite hooks, measures flicker and writes outputs strictly in frame order.

Hook points for the trust stage (see `MergeHooks`):
* `post_composite`: called for every rendered frame, in order, before anything is written; may
  return a replacement image (watermark embedding, explicit-content check, visible label).
* `finalize`: called once with the `MergeResult` after every output is complete (render record,
  C2PA signing - which must stay the very last step).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import queue
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from facedouble import __version__
from facedouble.colour import get_colour_transfer
from facedouble.colour.luma import luma
from facedouble.config import to_dict
from facedouble.errors import FacedoubleError, PolicyError
from facedouble.io.atomic import atomic_write_json, storage_error
from facedouble.io.digest import sha256_file
from facedouble.io.lock import OutputLock, lock_path_for, part_locks
from facedouble.io.video import Frame, open_source
from facedouble.log import get_logger
from facedouble.merge.blend import composite, scale_about_centre, sharpen
from facedouble.merge.masks import build_mask, hands_for_mode, refine_mask
from facedouble.merge.model import Swapper, check_swapper
from facedouble.merge.overrides import FaceSettings, OverrideRule, Overrides
from facedouble.merge.plan import FaceJob, MergePlan, build_plan
from facedouble.merge.shard import shard_segments
from facedouble.merge.writers import EncoderProcess, check_video_size, concat_segments, write_matte, write_png

log = get_logger("facedouble.merge")

PLAN_FILE = "plan.json"


@dataclasses.dataclass
class MergeConfig(FaceSettings):
    """Merge settings (TOML-loadable): the per-frame face settings plus run-wide ones."""

    # Keys renamed by issue 18 (one vocabulary): a TOML file with the old key gets a one-line hint.
    RENAMED_KEYS: ClassVar[dict[str, str]] = {"preset": "x264_preset", "smooth": "transform_smooth",
                                              "conv_algo": "conv"}
    X264_PRESETS: ClassVar[tuple[str, ...]] = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium",
                                               "slow", "slower", "veryslow", "placebo")

    transform_smooth: float = 1.0  # temporal smoothing sigma of the face transforms, in frames (0 = off)
    batch: int = 16  # frames per model batch (the swapper runs 16 faces at a time; 16 beat 8 at 720p)
    workers: int = 2  # compositing threads
    segment_frames: int = 50  # frames per resumable/shardable video segment
    crf: int = 18  # x264 quality (lower = better)
    x264_preset: str = "veryfast"  # x264 speed preset
    precision: str = "auto"  # model arithmetic: auto | fp32 | bf16 (facedouble.nn.precision)
    conv: str = "auto"  # how the model's convs run: auto | direct | winograd (facedouble.nn.precision)

    @property
    def smooth(self) -> float:
        """The transform smoothing sigma (the render loop's name for it)."""
        return self.transform_smooth

    @property
    def preset(self) -> str:
        """The x264 speed preset (the encoder's name for it)."""
        return self.x264_preset

    def face_settings(self) -> FaceSettings:
        """The per-frame part."""
        return FaceSettings(**{f.name: getattr(self, f.name) for f in dataclasses.fields(FaceSettings)})

    def validate(self) -> MergeConfig:
        """One-line FacedoubleError for impossible values."""
        self.face_settings().validate()
        if not 0 <= self.transform_smooth <= 10:
            raise FacedoubleError(f"transform_smooth must be 0..10 frames, got {self.transform_smooth}")
        from facedouble.nn.precision import CONV_ALGOS, PRECISIONS

        for name, allowed in (("x264_preset", self.X264_PRESETS), ("precision", PRECISIONS), ("conv", CONV_ALGOS)):
            if getattr(self, name) not in allowed:
                raise FacedoubleError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        for name, lo, hi in (("batch", 1, 256), ("workers", 1, 64), ("segment_frames", 1, 100000),
                             ("crf", 0, 51)):
            if not lo <= getattr(self, name) <= hi:
                raise FacedoubleError(f"{name} must be {lo}..{hi}, got {getattr(self, name)}")
        return self


@dataclasses.dataclass
class Outputs:
    """Where results go. At least one of `video` and `png_dir`."""

    video: Path | None = None  # .mp4 / .mov / .mkv
    png_dir: Path | None = None
    matte_dir: Path | None = None
    transforms: Path | None = None  # per-frame transforms JSON

    def work_dir(self) -> Path:
        """Folder holding segments and per-segment records (kept for resume, shards and concat)."""
        if self.video is not None:
            return self.video.parent / (self.video.name + ".parts")
        if self.png_dir is not None:
            return self.png_dir / ".merge-parts"
        raise FacedoubleError("no output given (a video file and/or a PNG folder)")


@dataclasses.dataclass
class FrameContext:
    """What a post-composite hook sees for one frame."""

    index: int
    timestamp: float
    image: np.ndarray  # rendered RGB uint8 (H, W, 3)
    target: np.ndarray  # original frame
    alpha: np.ndarray  # float32 (H, W) union of the face mattes
    faces: list[dict[str, Any]]  # per face: track_id, box_xyxy, aligned_to_frame, ...
    fps: float
    frame_count: int | None  # the clip's (container-declared) frame count, for choosing frames to mark
    warmup: bool = False  # True: rendered only to seed flicker statistics; not written


@dataclasses.dataclass
class MergeResult:
    """Summary of a finished merge (handed to finalize hooks and printed)."""

    frames: int
    frames_with_faces: int
    flicker: float | None
    clip: Path
    outputs: Outputs
    model_hash: str
    consent: dict | None
    settings: dict[str, Any]
    fingerprint: str
    seconds: float = 0.0


PostCompositeHook = Callable[[FrameContext], "np.ndarray | None"]
FinalizeHook = Callable[[MergeResult], None]
MetadataHook = Callable[[MergeResult], dict[str, str]]


@dataclasses.dataclass
class MergeHooks:
    """Extension points (trust wiring): see the module docstring."""

    post_composite: list[PostCompositeHook] = dataclasses.field(default_factory=list)
    metadata: list[MetadataHook] = dataclasses.field(default_factory=list)  # extra MP4 container tags
    finalize: list[FinalizeHook] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Rendered:
    """One composited frame on its way to the sink."""

    index: int
    timestamp: float
    image: np.ndarray
    target: np.ndarray
    alpha: np.ndarray
    faces: list[dict[str, Any]]
    warmup: bool


# ---------------------------------------------------------------------------------------------------
# Rendering one batch


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


# ---------------------------------------------------------------------------------------------------
# Flicker


def _union_box(faces: list[dict[str, Any]]) -> tuple[int, int, int, int] | None:
    boxes = [f["box_xyxy"] for f in faces if f.get("box_xyxy")]
    if not boxes:
        return None
    b = np.array(boxes)
    return int(b[:, 0].min()), int(b[:, 1].min()), int(b[:, 2].max()), int(b[:, 3].max())


def flicker_pair(prev: Rendered, cur: Rendered) -> tuple[float, float, int] | None:
    """(sum |dY| render, sum |dY| target, pixels) over the face region of two consecutive frames.

    The face region is where either frame's matte exceeds 0.5. The flicker figure of a clip is
    sum(render) / sum(target): 1.0 means the face changes from frame to frame exactly as much as the
    original performer's face did; above 1 the swap adds jitter or shimmer.
    """
    boxes = [b for b in (_union_box(prev.faces), _union_box(cur.faces)) if b]
    if not boxes:
        return None
    b = np.array(boxes)  # work inside the faces' boxes only: full-frame masks cost 17 ms a frame at 720p
    sl = np.s_[int(b[:, 1].min()):int(b[:, 3].max()), int(b[:, 0].min()):int(b[:, 2].max())]
    region = (prev.alpha[sl] > 0.5) | (cur.alpha[sl] > 0.5)
    n = int(region.sum())
    if n == 0:
        return None
    d_render = np.abs(luma(cur.image[sl][region]) - luma(prev.image[sl][region])).sum()
    d_target = np.abs(luma(cur.target[sl][region]) - luma(prev.target[sl][region])).sum()
    return float(d_render), float(d_target), n


def flicker_figure(pairs: list[tuple[float, float, int] | None]) -> float | None:
    """Clip flicker figure from per-frame pairs (None entries skipped)."""
    render = sum(p[0] for p in pairs if p)
    target = sum(p[1] for p in pairs if p)
    return render / target if target > 0 else None


# ---------------------------------------------------------------------------------------------------
# Segments, shards, work folder


def segment_name(k: int) -> str:
    """File stem of segment k in the work folder."""
    return f"seg_{k:05d}"


@functools.lru_cache(maxsize=16)
def _clip_digest(path: str, stamp: tuple) -> str:
    root = Path(path)
    if not root.is_dir():
        return sha256_file(root)
    # an image-sequence folder: its frames' names and contents, in order
    digest = hashlib.sha256()
    for name, *_ in stamp:
        digest.update(f"{name}\0{sha256_file(root / name)}\0".encode())
    return digest.hexdigest()


def clip_digest(clip: str | Path) -> str:
    """SHA-256 of the clip's bytes, or of a still folder's frames (cached per path, sizes and mtimes).

    By content, not name or size: a regraded plate of the same byte size is another clip, and the same
    file on another machine's mount point is the same one.
    """
    path = Path(clip).resolve()
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.is_file())
        stamp = tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    else:
        st = path.stat()
        stamp = (st.st_size, st.st_mtime_ns)
    return _clip_digest(str(path), stamp)


def fingerprint(model: Swapper, plan: MergePlan, config: MergeConfig, rules: list[OverrideRule],
                outputs: Outputs) -> str:
    """Hash of everything that changes the pixels; a work folder from other settings is not reused."""
    # The clip by content, not path: shards on machines with other mount points must agree.
    data = {"model": model.model_hash, "clip": clip_digest(plan.clip),
            "size": [plan.info.width, plan.info.height],
            "config": to_dict(config) | {"workers": None}, "rules": [dataclasses.asdict(r) for r in rules],
            "outputs": {k: v is not None for k, v in dataclasses.asdict(outputs).items()}, "faces": sorted(
                (i, j.track_id, np.round(j.to_frame, 6).tolist()) for i, js in plan.faces.items() for j in js)}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def prepare_work_dir(outputs: Outputs, state: dict[str, Any], fresh: bool) -> Path:
    """Create or check the work folder; FacedoubleError if it belongs to a different setup."""
    work = outputs.work_dir()
    plan_file = work / PLAN_FILE
    if fresh and work.exists():
        shutil.rmtree(work)
    if plan_file.exists():
        old = json.loads(plan_file.read_text(encoding="utf-8"))
        if old.get("fingerprint") != state["fingerprint"]:
            raise FacedoubleError(f"{work} holds a merge with other settings or model; re-run with --fresh "
                                  "to start over")
    else:
        atomic_write_json(plan_file, state)
    return work


def segment_records(work: Path) -> dict[int, dict[str, Any]]:
    """Finished segments' records by segment index."""
    out = {}
    for path in sorted(work.glob("seg_*.json")):
        out[int(path.stem[4:])] = json.loads(path.read_text(encoding="utf-8"))
    return out


# ---------------------------------------------------------------------------------------------------
# Sink: ordered writing


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
        self.eof = False
        self.stop_requested = False  # the sink failed: skip everything
        self.interrupted = False  # the producer stopped early: write what was rendered, keep whole segments
        self.fingerprint = json.loads((work / PLAN_FILE).read_text(encoding="utf-8"))["fingerprint"]

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
            if self.interrupted:
                if len(self.records) == self.config.segment_frames:  # complete: keep it
                    self.close_segment(last=False)
            elif not self.stop_requested:
                self.close_segment(last=self.eof)
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
                                  self.config.preset, threads=1, colour=self.plan.colour)
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


# ---------------------------------------------------------------------------------------------------
# Entry points


def load_plan(model: Swapper, faceset: str | Path, config: MergeConfig, clip: str | Path | None) -> MergePlan:
    """Plan at the model's resolution and face type."""
    return build_plan(faceset, int(model.resolution), model.face_type, config.smooth, clip)


def merge(model: Swapper, faceset: str | Path, outputs: Outputs, config: MergeConfig | None = None,
          rules: list[OverrideRule] | None = None, clip: str | Path | None = None, shard: tuple[int, int] = (1, 1),
          hooks: MergeHooks | None = None, fresh: bool = False, progress: bool = True,
          plan: MergePlan | None = None) -> MergeResult | None:
    """Render the target clip with `model`'s faces; resumes from the work folder of `outputs`.

    A single run (shard 1/1) also concatenates and finalizes, returning the MergeResult. A shard
    renders its segments only and returns None; run `concat` once all shards are done.
    `hooks` are required: a render is marked by its provenance hooks (facedouble.trust.render, which
    `api.merge` and the CLI pass); without post-composite hooks nothing is rendered (PolicyError).
    """
    t0 = time.perf_counter()
    if hooks is None or not hooks.post_composite:
        raise PolicyError("a render must be marked: pass the provenance hooks "
                          "(facedouble.trust.render.RenderProvenance(...).hooks(), or use facedouble.api.merge)")
    config = (config or MergeConfig()).validate()
    model = check_swapper(model)
    rules = rules or []
    overrides = Overrides(config.face_settings(), rules)
    plan = plan or load_plan(model, faceset, config, clip)
    if outputs.video is not None:
        check_video_size(plan.info.width, plan.info.height)  # before any work, not at the first segment
    fp = fingerprint(model, plan, config, rules, outputs)
    state = {"fingerprint": fp, "clip": str(plan.clip.resolve()), "frame_count": plan.frame_count,
             "width": plan.info.width, "height": plan.info.height, "fps": float(plan.fps),
             "segment_frames": config.segment_frames, "model_hash": model.model_hash, "consent": model.consent,
             "settings": to_dict(config), "overrides": [dataclasses.asdict(r) for r in rules],
             "outputs": {k: str(v) if v else None for k, v in dataclasses.asdict(outputs).items()},
             "tool": f"facedouble {__version__}"}
    # one merge per output (shards side by side); a second one, or a read-only folder, stops here
    locks = part_locks(outputs.work_dir(), "merge", shard)
    try:
        work = prepare_work_dir(outputs, state, fresh)
        first, end = shard_segments(plan.frame_count, config.segment_frames, shard)
        render_range(model, plan, overrides, config, outputs, work, first, end, hooks, progress)
        if shard != (1, 1):
            log.info("shard %d/%d done; run `facedouble merge --concat --out ...` when all shards are", *shard)
            return None
        return finalize(outputs, hooks, seconds=time.perf_counter() - t0)
    finally:
        for lock in locks:
            lock.release()


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
            sink.eof = True
        flush()
    except BaseException:
        # Ctrl-C or a model error: frames already rendered are still written, so every segment that is
        # complete is kept for the next run; the partial one is dropped.
        sink.interrupted = True
        raise
    finally:
        sink.queue.put(None)
        sink.join()
        renderer.close()
    if sink.error is not None:
        raise sink.error
    if sink.eof and last_index >= 0:
        # The clip ended exactly where an earlier, interrupted run had closed a full segment: mark it
        # as the last one now that the end of the clip has been seen.
        record_path = work / f"{segment_name(last_index // seg_len)}.json"
        record = json.loads(record_path.read_text(encoding="utf-8")) if record_path.exists() else None
        if record is not None and not record["last"]:
            atomic_write_json(record_path, record | {"last": True})
    return sink.written


def finalize(outputs: Outputs, hooks: MergeHooks | None = None, seconds: float = 0.0) -> MergeResult:
    """Check every segment is there, concatenate video (+ audio), write transforms JSON, run hooks."""
    with OutputLock(lock_path_for(outputs.work_dir()), "merge"):  # never while a shard still renders
        try:
            return _finalize(outputs, hooks, seconds)
        except OSError as exc:  # a full disk while joining segments: one line; the segments are kept
            if (error := storage_error(outputs.video or outputs.work_dir(), exc)) is not None:
                raise error from None
            raise


def _finalize(outputs: Outputs, hooks: MergeHooks | None, seconds: float) -> MergeResult:
    hooks = hooks or MergeHooks()
    work = outputs.work_dir()
    plan_file = work / PLAN_FILE
    if not plan_file.exists():
        raise FacedoubleError(f"no merge work folder at {work}; render (or copy the shards' folders) first")
    state = json.loads(plan_file.read_text(encoding="utf-8"))
    done = segment_records(work)
    last = [k for k, rec in done.items() if rec["last"]]
    if not last:
        raise FacedoubleError(f"the segment holding the clip's end is missing in {work}; a shard has not finished")
    missing = [k for k in range(last[0] + 1) if k not in done]
    if missing:
        raise FacedoubleError(f"{len(missing)} segment(s) missing in {work} (first {segment_name(missing[0])}); "
                              "finish every shard, then concat")
    foreign = [k for k in range(last[0] + 1) if done[k].get("fingerprint") != state["fingerprint"]]
    if foreign:
        raise FacedoubleError(f"segment {segment_name(foreign[0])} in {work} was rendered with other settings, "
                              "model or target; render it again with the same command on every machine")
    frames = [f for k in range(last[0] + 1) for f in done[k]["frames"]]
    expected = list(range(len(frames)))
    if [f["index"] for f in frames] != expected:
        raise FacedoubleError(f"segments in {work} do not cover the frames in order; re-run with --fresh")
    clip = Path(state["clip"])
    flicker = flicker_figure([tuple(f["flicker"]) if f["flicker"] else None for f in frames])
    result = MergeResult(frames=len(frames), frames_with_faces=sum(1 for f in frames if f["faces"]), flicker=flicker,
                         clip=clip, outputs=outputs, model_hash=state["model_hash"], consent=state.get("consent"),
                         settings=state["settings"], fingerprint=state["fingerprint"], seconds=seconds)
    if outputs.video is not None:
        segments = [work / f"{segment_name(k)}.mp4" for k in range(last[0] + 1)]
        absent = [p.name for p in segments if not p.exists()]
        if absent:
            raise FacedoubleError(f"video segment {absent[0]} missing in {work}")
        metadata = {"comment": "synthetic media: face replaced with facedouble",
                    "encoder": state.get("tool", "facedouble")}
        for hook in hooks.metadata:
            metadata.update(hook(result))
        concat_segments(segments, outputs.video, audio_from=clip, metadata=metadata)
    if outputs.transforms is not None:
        atomic_write_json(outputs.transforms, {
            "version": 1, "clip": str(clip), "width": state.get("width"), "height": state.get("height"),
            "fps": state.get("fps"), "note": "aligned_to_frame maps model-crop pixels to "
            "frame pixels (2x3 affine); corner_pin is the crop's corners in frame pixels (TL, TR, BR, BL)",
            "frames": [{"index": f["index"], "timestamp": f["timestamp"], "faces": f["faces"]} for f in frames]})
    for hook in hooks.finalize:
        hook(result)
    return result


def preview(model: Swapper, faceset: str | Path, index: int, hooks: MergeHooks, config: MergeConfig | None = None,
            rules: list[OverrideRule] | None = None, clip: str | Path | None = None,
            plan: MergePlan | None = None) -> np.ndarray:
    """Frame `index` rendered alone (for tuning), passed through `hooks`' post-composite hooks; RGB uint8.

    Writes nothing: a preview is a swap like any other, so it is only returned after the provenance hooks
    have marked it (callers use `facedouble.trust.render.render_preview`, which brings the consent check,
    watermark and label). Without a post-composite hook it is refused.
    """
    if hooks is None or not hooks.post_composite:
        raise PolicyError("a preview must be marked: pass the provenance hooks "
                          "(facedouble.trust.render.render_preview)")
    config = (config or MergeConfig()).validate()
    model = check_swapper(model)
    overrides = Overrides(config.face_settings(), rules or [])
    plan = plan or load_plan(model, faceset, config, clip)
    renderer = Renderer(model, plan, overrides, 1)
    try:
        for frame in open_source(plan.clip).frames(index):  # seeks in MP4/MOV/MKV
            r = renderer.submit([frame], [False])[0].result()
            ctx = FrameContext(r.index, r.timestamp, r.image, r.target, r.alpha, r.faces, float(plan.fps),
                               plan.frame_count, False)
            for hook in hooks.post_composite:
                replaced = hook(ctx)
                if replaced is not None:
                    ctx.image = replaced
            return ctx.image
    finally:
        renderer.close()
    raise FacedoubleError(f"frame {index} is past the end of {plan.clip}")
