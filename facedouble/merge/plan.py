"""The merge plan: which face goes where in which frame, with smoothed transforms at model resolution."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from fractions import Fraction
from pathlib import Path

import numpy as np

from facedouble.errors import FacedoubleError, InputError
from facedouble.face.align import invert, to3x3
from facedouble.face.types import FACE_TYPE_SHIFT, FACE_TYPES
from facedouble.faceset import FaceMeta, Faceset
from facedouble.io.video import SourceInfo, open_source
from facedouble.merge.smooth import smooth_all


@dataclasses.dataclass
class FaceJob:
    """One face to replace in one frame; geometry in model space (resolution R)."""

    frame_index: int
    track_id: int
    to_aligned: np.ndarray  # 2x3 frame -> model crop (smoothed)
    to_frame: np.ndarray  # 2x3 model crop -> frame (smoothed)
    landmarks: np.ndarray  # (68, 2) in model crop pixels (from the unsmoothed alignment: stable)
    mesh: np.ndarray | None  # (N, 2) in model crop pixels


@dataclasses.dataclass
class MergePlan:
    """Everything fixed before rendering."""

    clip: Path
    info: SourceInfo
    time_base: Fraction
    fps: Fraction
    resolution: int
    faces: dict[int, list[FaceJob]]
    frame_count: int | None
    colour: dict[str, int] = dataclasses.field(default_factory=dict)  # source colorspace/range/primaries/trc

    def pts(self, timestamp: float, index: int) -> int:
        """Presentation timestamp in `time_base` units for a frame."""
        if self.info.kind == "images":
            return index
        return int(round(timestamp / self.time_base))


def retarget(size: int, face_type: str, res: int, model_face_type: str) -> np.ndarray:
    """3x3 map from aligned pixels (size, face_type) to model crop pixels (res, model_face_type).

    Inverts the face-type geometry of `facedouble.face.align.template_in_output`.
    """
    pa, pb = FACE_TYPES[face_type], FACE_TYPES[model_face_type]
    sa, sb = FACE_TYPE_SHIFT[face_type], FACE_TYPE_SHIFT[model_face_type]
    k = (1 + 2 * pa) / size * res / (1 + 2 * pb)
    off = np.array([pb - pa, pb - pa + sb - sa]) * res / (1 + 2 * pb)
    return np.array([[k, 0.0, off[0]], [0.0, k, off[1]], [0.0, 0.0, 1.0]])


def _points(mat: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts[:, :2] @ mat[:2, :2].T + mat[:2, 2]


def resolve_clip(metas: list[FaceMeta], faceset: Path, clip: str | Path | None) -> Path:
    """The target clip: given explicitly, or the faceset's recorded source (absolute, relative to the
    working directory, or relative to the faceset folder)."""
    if clip is not None:
        path = Path(clip)
        if not path.exists():
            raise InputError(f"target clip not found: {path}")
        return path
    sources = sorted({m.source for m in metas})
    if len(sources) != 1:
        raise FacedoubleError(f"faceset {faceset} holds faces of {len(sources)} clips; name the target clip "
                              "with --clip")
    recorded = _locate(sources[0], faceset)
    if recorded is not None:
        return recorded
    raise InputError(f"source clip {sources[0]} of faceset {faceset} not found; give it with --clip")


def _locate(recorded: str, faceset: Path) -> Path | None:
    """Where a face's recorded source is now: absolute, relative to the working directory, or relative to
    the faceset folder."""
    path = Path(recorded)
    for candidate in (path, faceset / path, faceset.parent / path, faceset / path.name):
        if candidate.exists():
            return candidate
    return None


def faces_of_clip(metas: list[FaceMeta], faceset: Path, clip: Path) -> list[FaceMeta]:
    """The faces of `clip` in a faceset of several clips.

    Sources are told apart by the file they resolve to, not by name: two cameras' C0001.MP4 in one
    faceset must not be merged into one clip. Only when no recorded source resolves to `clip` (the
    footage moved) does the name decide, and then only if one recorded source has that name.
    """
    target = clip.resolve()
    same: dict[str, bool] = {}
    for source in {m.source for m in metas}:
        found = _locate(source, faceset)
        same[source] = found is not None and found.resolve() == target
    if any(same.values()):
        return [m for m in metas if same[m.source]]
    named = {s for s in same if Path(s).name == clip.name}
    if len(named) > 1:
        raise FacedoubleError(f"faceset {faceset} holds faces of {len(named)} different clips named {clip.name} "
                              f"and none of them is at {clip}; move the clip back or split the faceset")
    return [m for m in metas if m.source in named]


def build_plan(faceset_dir: str | Path, resolution: int, model_face_type: str, smooth_sigma: float,
               clip: str | Path | None = None) -> MergePlan:
    """Read the target faceset's metadata and prepare smoothed per-face geometry."""
    import av

    faceset_dir = Path(faceset_dir)
    metas = [m for _, m in Faceset(faceset_dir).metas()]
    if not metas:
        raise InputError(f"faceset {faceset_dir} has no faces")
    if model_face_type not in FACE_TYPES:
        raise FacedoubleError(f"model face type {model_face_type!r} is unknown")
    path = resolve_clip(metas, faceset_dir, clip)
    if len({m.source for m in metas}) > 1:  # a faceset of several clips: keep this clip's faces
        metas = faces_of_clip(metas, faceset_dir, path)
    if not metas:
        raise InputError(f"faceset {faceset_dir} has no faces from {path.name}")
    source = open_source(path)
    info = source.info
    for m in metas:
        if tuple(m.frame_size) != (info.width, info.height):
            raise InputError(f"faceset frame size {m.frame_size} differs from the clip's "
                             f"{info.width}x{info.height}")
    if info.kind == "video":
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            time_base = Fraction(stream.time_base)
            fps = Fraction(stream.average_rate) if stream.average_rate else Fraction(25)
            cc = stream.codec_context
            colour = {k: int(getattr(cc, k, 2) or 2) for k in ("colorspace", "color_range", "color_primaries",
                                                                 "color_trc")}
    else:
        # an image sequence's rate (--fps or its metadata, facedouble.io.sequence); a plain image folder's is 25
        fps = Fraction(info.fps).limit_denominator(1001) if info.fps else Fraction(25)
        time_base, colour = 1 / fps, {}

    jobs_in: list[tuple[int, int, np.ndarray]] = []
    geometry = []
    for m in metas:
        to_model = retarget(m.size, m.face_type, resolution, model_face_type) @ to3x3(m.transform)
        geometry.append((to_model, m))
        jobs_in.append((m.frame_index, m.track_id, invert(to_model[:2])))
    smoothed = smooth_all(jobs_in, smooth_sigma)
    faces: dict[int, list[FaceJob]] = defaultdict(list)
    for (to_model, m), to_frame in zip(geometry, smoothed, strict=True):
        faces[m.frame_index].append(FaceJob(
            frame_index=m.frame_index, track_id=m.track_id, to_aligned=invert(to_frame), to_frame=to_frame,
            landmarks=_points(to_model, m.landmarks),
            mesh=_points(to_model, m.mesh) if m.mesh is not None else None))
    for jobs in faces.values():
        jobs.sort(key=lambda j: j.track_id)
    return MergePlan(clip=path, info=info, time_base=time_base, fps=fps, resolution=resolution,
                     faces=dict(faces), frame_count=info.frame_count, colour=colour)
