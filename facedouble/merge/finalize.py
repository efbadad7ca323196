"""Finalize a merge: check every segment is there, join them (+ audio), write transforms JSON, run hooks."""

from __future__ import annotations

import json
from pathlib import Path

from facedouble.errors import FacedoubleError
from facedouble.io.atomic import atomic_write_json, storage_error
from facedouble.io.lock import OutputLock, lock_path_for
from facedouble.merge.config import Outputs
from facedouble.merge.flicker import flicker_figure
from facedouble.merge.hooks import MergeHooks, MergeResult
from facedouble.merge.workdir import PLAN_FILE, segment_name, segment_records
from facedouble.merge.writers import concat_segments


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
