"""Finalize a merge: check every segment is there, join them (+ audio, timecode), write the transforms and
patches JSON, run hooks."""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction
from pathlib import Path

import numpy as np

from facedouble.errors import FacedoubleError
from facedouble.io.atomic import atomic_write_json, storage_error
from facedouble.io.lock import OutputLock, lock_path_for
from facedouble.merge.config import Outputs
from facedouble.merge.flicker import flicker_figure
from facedouble.merge.hooks import MergeHooks, MergeResult
from facedouble.merge.staging import publish, stage
from facedouble.merge.workdir import PLAN_FILE, segment_name, segment_records
from facedouble.merge.writers import concat_segments, timecode_add, video_codec

# The transforms/patches JSON's conventions, stated in the file itself.
CONVENTION = (
    "Matrices are 2x3 affines [[a, b, tx], [c, d, ty]] mapping source pixels to destination pixels in OpenCV "
    "convention: origin at the top-left, y down, integer coordinates at pixel centres (cv2.warpAffine "
    "uses them as they are). The *_nuke variants are the same maps as 3x3 matrices in Nuke's convention: "
    "origin at the bottom-left, y up, pixel centres at +0.5 (paste into a Transform node's matrix or use "
    "corner_pin_nuke's to1..to4 in a CornerPin2D with from1..from4 = the patch/crop corners).")


def _flip(height: int) -> np.ndarray:
    """OpenCV pixel coordinates -> Nuke coordinates for an image of `height` rows (y up, centres at +0.5)."""
    return np.array([[1.0, 0.0, 0.5], [0.0, -1.0, height - 0.5], [0.0, 0.0, 1.0]])


def to_nuke(matrix: list | np.ndarray, src_height: int, dst_height: int) -> list[list[float]]:
    """A 2x3 OpenCV-convention map (src pixels -> dst pixels) as a 3x3 matrix in Nuke's convention."""
    m = np.vstack([np.asarray(matrix, np.float64).reshape(2, 3), [0.0, 0.0, 1.0]])
    return (_flip(dst_height) @ m @ np.linalg.inv(_flip(src_height))).round(9).tolist()


def _corners_nuke(x: float, y: float, w: float, h: float, height: int) -> dict[str, list[float]]:
    """CornerPin2D 'to' points of a w x h patch placed at (x, y): Nuke order bottom-left, bottom-right,
    top-right, top-left, in edge coordinates (a patch pixel's corners, not centres)."""
    return {"to1": [x, height - (y + h)], "to2": [x + w, height - (y + h)], "to3": [x + w, height - y],
            "to4": [x, height - y]}


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
    first_frame = (state.get("window") or [0])[0]
    expected = list(range(first_frame, first_frame + len(frames)))
    if [f["index"] for f in frames] != expected:
        raise FacedoubleError(f"segments in {work} do not cover the frames in order; re-run with --fresh")
    clip = Path(state["clip"])
    flicker = flicker_figure([tuple(f["flicker"]) if f["flicker"] else None for f in frames])
    result = MergeResult(frames=len(frames), frames_with_faces=sum(1 for f in frames if f["faces"]), flicker=flicker,
                         clip=clip, outputs=outputs, model_hash=state["model_hash"], consent=state.get("consent"),
                         settings=state["settings"], fingerprint=state["fingerprint"], seconds=seconds)
    codec = video_codec(state["settings"].get("codec", "h264"))
    staged = stage(outputs)  # the video takes its final name only once signed (facedouble.merge.staging)
    if outputs.video is not None:
        segments = [work / f"{segment_name(k)}{codec.segment_suffix}" for k in range(last[0] + 1)]
        absent = [p.name for p in segments if not p.exists()]
        if absent:
            raise FacedoubleError(f"video segment {absent[0]} missing in {work}")
        metadata = {"comment": "synthetic media: face replaced with facedouble",
                    "encoder": state.get("tool", "facedouble")}
        for hook in hooks.metadata:
            metadata.update(hook(result))
        fps = Fraction(state.get("fps_exact") or Fraction(state.get("fps") or 25).limit_denominator(1001))
        timecode = state.get("timecode")
        if timecode and first_frame:
            timecode = timecode_add(timecode, first_frame, fps)
        ranged = state.get("window") is not None and state["window"] != [0, None]
        window = None
        if ranged and frames:
            end = frames[-1]["timestamp"] + 1.0 / float(fps)
            window = (frames[0]["timestamp"], end if state["window"][1] is not None else None)
        concat_segments(segments, staged.video, audio_from=clip, metadata=metadata, timecode=timecode, fps=fps,
                        rotation=int(state.get("rotation") or 0),
                        audio_window=window, video_shift=frames[0]["pts"] if ranged and frames else 0)
    height = int(state.get("height") or 0)
    if outputs.transforms is not None:
        for f in frames:
            for face in f["faces"]:
                res = int(face.get("resolution") or 0)
                face["aligned_to_frame_nuke"] = to_nuke(face["aligned_to_frame"], res, height)
        atomic_write_json(outputs.transforms, {
            "version": 2, "clip": str(clip), "width": state.get("width"), "height": height,
            "fps": state.get("fps"), "timecode": state.get("timecode"), "convention": CONVENTION,
            "note": "aligned_to_frame maps model-crop pixels to frame pixels (2x3 affine); corner_pin is the "
            "crop's corners in frame pixels (TL, TR, BR, BL); index is the source frame number",
            "frames": [{"index": f["index"], "timestamp": f["timestamp"], "faces": f["faces"]} for f in frames]})
    if outputs.patch_dir is not None:
        _write_patches_json(outputs, state, frames, height)
    for hook in hooks.finalize:
        hook(dataclasses.replace(result, outputs=staged))
    publish(staged, outputs)
    return result


def _write_patches_json(outputs: Outputs, state: dict, frames: list[dict], height: int) -> None:
    """patches.json: per source frame, its RGBA patch file and the matrices that place it on the plate."""
    entries = []
    for f in frames:
        box = f.get("patch")
        if not box:
            continue
        x, y, w, h = box["x"], box["y"], box["w"], box["h"]
        place = [[1.0, 0.0, float(x)], [0.0, 1.0, float(y)]]
        entries.append({
            "index": f["index"], "file": f"{f['index']:06d}.png", "box_xywh": [x, y, w, h],
            "patch_to_frame": place, "patch_to_frame_nuke": to_nuke(place, h, height),
            "nuke_transform_translate": [x, height - y - h], "corner_pin_nuke": _corners_nuke(x, y, w, h, height),
            "faces": [{"track_id": face.get("track_id"), "aligned_to_frame": face["aligned_to_frame"],
                       "aligned_to_frame_nuke": to_nuke(face["aligned_to_frame"], int(face["resolution"]), height)}
                      for face in f["faces"]]})
    atomic_write_json(outputs.patch_dir / "patches.json", {
        "version": 1, "clip": state.get("clip"), "width": state.get("width"), "height": height,
        "fps": state.get("fps"), "timecode": state.get("timecode"), "convention": CONVENTION,
        "patch": "16-bit RGBA PNG per frame (NNNNNN.png = source frame number): the render's pixels, straight "
        "(not premultiplied) alpha = the matte of everything merge changed (faces, watermark, label). "
        "The plate under patch_to_frame (a whole-pixel translation: no resampling, exact in any compositor) "
        "with the patch 'over' it gives the render; aligned_to_frame per face is the model crop's placement "
        "for stabilised/tracked work.",
        "frames": entries})
