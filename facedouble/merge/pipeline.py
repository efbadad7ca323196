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

The pieces live beside this module: `config` (MergeConfig, Outputs), `hooks` (hook points and
records), `render` (compositing and the segment render loop), `sink` (ordered writing), `flicker`,
`workdir` (segments, fingerprint, clip digest) and `finalize` (join and finalize hooks). This module
is the entry points; it re-exports those names so `facedouble.merge.pipeline` stays the one import.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from facedouble import __version__
from facedouble.config import to_dict
from facedouble.errors import FacedoubleError, PolicyError
from facedouble.io.lock import part_locks
from facedouble.io.video import Frame, open_source
from facedouble.log import get_logger
from facedouble.merge.config import MergeConfig, Outputs
from facedouble.merge.finalize import finalize
from facedouble.merge.flicker import flicker_figure, flicker_pair
from facedouble.merge.hooks import (
    FinalizeHook,
    FrameContext,
    MergeHooks,
    MergeResult,
    MetadataHook,
    PostCompositeHook,
    Rendered,
)
from facedouble.merge.model import Swapper, check_swapper
from facedouble.merge.overrides import OverrideRule, Overrides
from facedouble.merge.plan import MergePlan, build_plan
from facedouble.merge.render import Renderer, composite_frame, crop_faces, render_range
from facedouble.merge.shard import shard_segments
from facedouble.merge.sink import Ending, Sink
from facedouble.merge.workdir import (
    PLAN_FILE,
    clip_digest,
    fingerprint,
    prepare_work_dir,
    segment_name,
    segment_records,
)
from facedouble.merge.writers import check_output_codec, check_video_size

__all__ = ["PLAN_FILE", "Ending", "FinalizeHook", "FrameContext", "MergeConfig", "MergeHooks", "MergeResult",
           "MetadataHook", "Outputs", "PostCompositeHook", "Rendered", "Renderer", "Sink", "clip_digest",
           "composite_frame", "crop_faces", "finalize", "fingerprint", "flicker_figure", "flicker_pair",
           "load_plan", "merge", "prepare_work_dir", "preview", "render_range", "segment_name",
           "segment_records"]

log = get_logger("facedouble.merge")


def load_plan(model: Swapper, faceset: str | Path, config: MergeConfig, clip: str | Path | None) -> MergePlan:
    """Plan at the model's resolution and face type."""
    return build_plan(faceset, int(model.resolution), model.face_type, config.transform_smooth, clip)


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
    if outputs.video is not None:  # before any work, not at the first segment
        check_output_codec(outputs.video, config.codec)
        check_video_size(plan.info.width, plan.info.height, config.codec)
    lo, hi = config.window(plan.frame_count, plan.info.first_number)
    fp = fingerprint(model, plan, config, rules, outputs)
    state = {"fingerprint": fp, "clip": str(plan.clip.resolve()), "frame_count": plan.frame_count,
             "width": plan.info.width, "height": plan.info.height, "fps": float(plan.fps),
             "segment_frames": config.segment_frames, "model_hash": model.model_hash, "consent": model.consent,
             "settings": to_dict(config), "overrides": [dataclasses.asdict(r) for r in rules],
             "outputs": {k: str(v) if v else None for k, v in dataclasses.asdict(outputs).items()},
             "tool": f"facedouble {__version__}", "fps_exact": str(plan.fps), "timecode": plan.info.timecode,
             "window": [lo, hi], "bit_depth": plan.info.bit_depth, "rotation": plan.info.rotation}
    # one merge per output (shards side by side); a second one, or a read-only folder, stops here
    locks = part_locks(outputs.work_dir(), "merge", shard)
    try:
        work = prepare_work_dir(outputs, state, fresh)
        count = plan.frame_count if hi is None else hi - lo + 1
        first, end = shard_segments(count, config.segment_frames, shard)
        render_range(model, plan, overrides, config, outputs, work, first, end, hooks, progress)
        if shard != (1, 1):
            log.info("shard %d/%d done; run `facedouble merge --concat --out ...` when all shards are", *shard)
            return None
        return finalize(outputs, hooks, seconds=time.perf_counter() - t0)
    finally:
        for lock in locks:
            lock.release()



def preview(model: Swapper, faceset: str | Path, index: int, hooks: MergeHooks, config: MergeConfig | None = None,
            rules: list[OverrideRule] | None = None, clip: str | Path | None = None,
            plan: MergePlan | None = None, frame: Frame | None = None) -> np.ndarray:
    """Frame `index` rendered alone (for tuning), passed through `hooks`' post-composite hooks; RGB uint8.

    Writes nothing: a preview is a swap like any other, so it is only returned after the provenance hooks
    have marked it (callers use `facedouble.trust.render.render_preview`, which brings the consent check,
    watermark and label). Without a post-composite hook it is refused. `frame`: the clip's frame `index`
    already decoded (a scrubbing caller keeps its decoder open between frames); None reads it from the clip.
    """
    if hooks is None or not hooks.post_composite:
        raise PolicyError("a preview must be marked: pass the provenance hooks "
                          "(facedouble.trust.render.render_preview)")
    config = (config or MergeConfig()).validate()
    model = check_swapper(model)
    overrides = Overrides(config.face_settings(), rules or [])
    plan = plan or load_plan(model, faceset, config, clip)
    if frame is not None and frame.index != index:
        raise FacedoubleError(f"the frame given for the preview of frame {index} is frame {frame.index}")
    renderer = Renderer(model, plan, overrides, 1, hooks.prepare)
    try:
        for decoded in [frame] if frame is not None else open_source(plan.clip).frames(index):  # seeks in MP4/MOV/MKV
            r = renderer.submit([decoded], [False])[0].result()
            ctx = r.context(float(plan.fps), plan.frame_count)
            for hook in hooks.post_composite:
                replaced = hook(ctx)
                if replaced is not None:
                    ctx.image = replaced
            return ctx.image
    finally:
        renderer.close()
    raise FacedoubleError(f"frame {index} is past the end of {plan.clip}")
