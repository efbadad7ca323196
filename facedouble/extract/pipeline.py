"""`extract` as a Python API: footage -> faceset folder of aligned faces with embedded metadata.

One streaming pass, three overlapping stages:
- decode runs in a background thread;
- the main thread tracks: the detector runs every `detect_every` frames (or when a track is lost), and
  between detections each face is followed by the mesh model on a crop from its previous landmarks;
- a frame is finalised once the tracker is `max_gap + 1 + smoothing radius` frames past it, so short
  gaps can be filled from both neighbours and the smoothing window is complete; its faces are then
  warped, embedded and written atomically by a small thread pool.
Faces already on disk are skipped, so re-running an interrupted job resumes it (the cheap tracking is
redone, the expensive writing is not). A face's name carries a tag of its source's content (see
`source_tag`), so a second card's C0001.MP4 never counts as "already there"; a folder whose faces were
extracted at another size or face type is refused rather than silently mixed (see `check_settings`).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import itertools
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
from tqdm import tqdm

from facedouble.errors import FacedoubleError, InputError, PolicyError
from facedouble.extract.detectors import DEVICES, get_detector, onnx_providers
from facedouble.extract.identity import SAME_PERSON_DISTANCE, IdentityEmbedder, distance
from facedouble.extract.landmarks import get_landmarker
from facedouble.extract.track import FaceObs, fill_gaps, landmark_box, largest_face, smooth_tracks
from facedouble.face.align import face_transform, invert, transform_points, warp_face
from facedouble.face.box import iou
from facedouble.face.types import FACE_TYPES
from facedouble.faceset.meta import META_KEY, FaceMeta, write_face
from facedouble.faceset.store import Faceset
from facedouble.io import imagemeta
from facedouble.io.atomic import atomic_write_json, remove_temps
from facedouble.io.framerange import frame_window, parse_frames
from facedouble.io.lock import OutputLock
from facedouble.io.video import Frame, FrameSource, open_source
from facedouble.log import get_logger
from facedouble.policy.guard import StreamGuard

log = get_logger(__name__)
REPORT_FILE = "extract-report.json"
LOCK_FILE = ".extract.lock"


@dataclasses.dataclass
class ExtractConfig:
    """Settings of one extraction (CLI flags of the same names)."""

    face_type: str = "full"
    size: int = 256
    detector: str = "retinaface"
    landmarks: str = "mediapipe"
    image_format: str = "png"  # png | jpg
    jpeg_quality: int = 95
    every_nth: int = 1  # analyse every Nth frame
    detect_every: int = 8  # re-run the detector at least this often while tracking holds
    max_gap: int = 5  # missed frames between two hits that are filled by interpolation
    landmark_smooth: float = 0.0  # landmark smoothing sigma along each track, in frames (0 = off)
    # Identity embedding on every Nth face of a track: dlib's ResNet costs ~40-80 ms a face on a CPU core.
    embed_every: int = 25
    reference: str | None = None  # image or faceset: keep only faces of this person
    reference_threshold: float = SAME_PERSON_DISTANCE
    max_faces: int = 8  # per frame
    debug: bool = False  # also write frames with landmarks drawn to _debug/
    progress: bool = True
    # Same meaning as merge's (facedouble.io.framerange): source frame numbers A-B (a sequence's own, e.g.
    # 1001-1050), grown by `handles` frames on both sides; "" = the whole clip.
    frames: str = ""
    handles: int = 0
    # Where the detector runs (ONNX Runtime's CUDA provider for cuda/auto); landmarks and the identity
    # embedding stay on the CPU. cpu is the tested default.
    device: str = "cpu"

    RENAMED_KEYS: ClassVar[dict[str, str]] = {"smooth": "landmark_smooth"}  # issue 18: one vocabulary

    def validate(self) -> None:
        """Raise FacedoubleError for settings that cannot work."""
        if not 0 <= self.landmark_smooth <= 10:
            raise FacedoubleError(f"landmark_smooth must be 0..10 frames, got {self.landmark_smooth}")
        if self.face_type not in FACE_TYPES:
            raise FacedoubleError(f"unknown face type {self.face_type!r}; choose from {', '.join(FACE_TYPES)}")
        if not 32 <= self.size <= 2048:
            raise FacedoubleError(f"--size must be between 32 and 2048, got {self.size}")
        if self.image_format not in ("png", "jpg"):
            raise FacedoubleError(f"--format must be png or jpg, got {self.image_format!r}")
        if self.every_nth < 1 or self.detect_every < 1 or self.embed_every < 1:
            raise FacedoubleError("--every-nth, --detect-every and --embed-every must be >= 1")
        if not 0 <= self.handles <= 100000:
            raise FacedoubleError(f"handles must be 0..100000, got {self.handles}")
        if self.device not in DEVICES:
            raise FacedoubleError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        parse_frames(self.frames)

    def window(self, frame_count: int | None, first_number: int = 0) -> tuple[int, int | None]:
        """[first, last] frame indices (0-based decode order) to analyse; see io.framerange.frame_window."""
        return frame_window(self.frames, self.handles, frame_count, first_number)


@dataclasses.dataclass
class ExtractReport:
    """What a run did; also written to extract-report.json in the output folder."""

    source: str
    frames_read: int = 0
    frames_analysed: int = 0
    faces_written: int = 0
    faces_skipped_existing: int = 0
    faces_rejected_reference: int = 0
    faces_interpolated: int = 0
    shot_cuts: int = 0
    frames_without_face: list[int] = dataclasses.field(default_factory=list)
    tracks: dict[int, int] = dataclasses.field(default_factory=dict)  # track id -> faces

    @property
    def detection_rate(self) -> float:
        """Share of analysed frames with at least one face (detected or filled)."""
        return 1 - len(self.frames_without_face) / max(1, self.frames_analysed)


def _prefetch(frames: Iterator[Frame], depth: int = 8) -> Iterator[Frame]:
    """Decode in a background thread so decoding overlaps inference."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()

    def worker() -> None:
        try:
            for frame in frames:
                q.put(frame)
        except BaseException as exc:  # re-raised in the consumer
            q.put(exc)
        q.put(done)

    threading.Thread(target=worker, daemon=True).start()
    while (item := q.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item


# Shot cuts. A cut is suspected when the 32x24 grey thumbnail of the frame changed by more than
# CUT_THRESHOLD (mean absolute difference, 0-255) since the track was last seen (GRID: <= 0.8 inside a
# shot, >= 10 at cuts). An occlusion changes the frame as much, so the track is only split if its face
# also changed: normalised correlation of 24 px aligned grey faces below FACE_SAME_NCC (GRID: >= 0.94
# for consecutive frames of one person, <= 0.89 across cuts between speakers).
CUT_THRESHOLD = 6.0
FACE_SAME_NCC = 0.92


def _frame_thumb(image: np.ndarray) -> np.ndarray:
    thumb = cv2.resize(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), (32, 24), interpolation=cv2.INTER_AREA)
    return thumb.astype(np.float32)


def _face_thumb(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    face = cv2.warpAffine(image, face_transform(landmarks, "half", 24), (24, 24), flags=cv2.INTER_AREA)
    grey = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY).astype(np.float32).ravel()
    grey -= grey.mean()
    return grey / max(float(np.linalg.norm(grey)), 1e-6)


@dataclasses.dataclass
class _Track:
    last: int  # analysed position last seen
    landmarks: np.ndarray
    score: float
    frame_thumb: np.ndarray
    face_thumb: np.ndarray


class _Tracker:
    """Detector + mesh tracking over the analysed frames; a track is split where the shot cuts."""

    def __init__(self, cfg: ExtractConfig):
        self.cfg = cfg
        self.detector = get_detector(cfg.detector, cfg.device)
        self.mesher = get_landmarker(cfg.landmarks)
        self.active: dict[int, _Track] = {}
        self.next_id = 0
        self.cuts = 0

    def step(self, pos: int, image: np.ndarray) -> list[FaceObs]:
        """Faces in the frame at analysed position `pos`, each with its track id."""
        frame_thumb = _frame_thumb(image)
        found: list[FaceObs] = []
        for tid, track in list(self.active.items()):
            if pos - track.last > self.cfg.max_gap + 1:
                del self.active[tid]
                continue
            res = self.mesher.from_landmarks(image, track.landmarks)
            if res is not None and self._plausible(res.landmarks, track.landmarks):
                found.append(FaceObs(pos, tid, res.mesh, res.landmarks, track.score))
        need_detect = pos % self.cfg.detect_every == 0 or len(found) < len(self.active) or not self.active
        if need_detect:
            for det in self.detector.detect(image)[: self.cfg.max_faces]:
                if any(iou(det.box, landmark_box(o.landmarks)) > 0.3 for o in found):
                    continue
                res = self.mesher.from_points5(image, det.points, det.box)
                if res is None:
                    continue
                box = landmark_box(res.landmarks)
                match = [tid for tid, track in self.active.items()
                         if tid not in {o.track_id for o in found} and iou(box, landmark_box(track.landmarks)) > 0.3]
                tid = match[0] if match else self.next_id
                if not match:
                    self.next_id += 1
                found.append(FaceObs(pos, tid, res.mesh, res.landmarks, det.score))
        # Two tracks that converged on one face: keep the older one.
        found.sort(key=lambda o: o.track_id)
        kept: list[FaceObs] = []
        for obs in found:
            if all(iou(landmark_box(obs.landmarks), landmark_box(k.landmarks)) < 0.5 for k in kept):
                kept.append(obs)
        split = False
        for obs in kept:
            face_thumb = _face_thumb(image, obs.landmarks)
            track = self.active.get(obs.track_id)
            if (track is not None and np.abs(frame_thumb - track.frame_thumb).mean() > CUT_THRESHOLD
                    and float(face_thumb @ track.face_thumb) < FACE_SAME_NCC):
                del self.active[obs.track_id]  # a cut to another face: never fill or smooth across it
                obs.track_id, self.next_id = self.next_id, self.next_id + 1
                split = True
            self.active[obs.track_id] = _Track(pos, obs.landmarks, obs.score, frame_thumb, face_thumb)
        self.cuts += split
        return kept

    @staticmethod
    def _plausible(new: np.ndarray, old: np.ndarray) -> bool:
        """Reject a tracked mesh that jumped or collapsed (the crop lost the face)."""
        old_span = np.ptp(old, 0).max()
        new_span = np.ptp(new, 0).max()
        shift = np.linalg.norm(new.mean(0) - old.mean(0))
        return 0.6 < new_span / old_span < 1.6 and shift < 0.5 * old_span


def reference_embedding(reference: str | Path, embedder: IdentityEmbedder, sample_every: int = 5) -> np.ndarray:
    """Mean identity descriptor of a person given as a faceset, an image, an image folder or a clip.

    A faceset gives the mean of its stored embeddings; otherwise the largest face of every
    `sample_every`-th frame is embedded.
    """
    path = Path(reference)
    if path.is_dir() and (faceset := Faceset(path)).paths() and _has_face_metadata(faceset):
        embeddings = [m.embedding for _, m in faceset.metas() if m.embedding is not None]
        if not embeddings:
            raise InputError(f"faceset {path} has no identity embeddings")
        return np.mean(embeddings, 0)
    embeddings = []
    cfg = ExtractConfig(progress=False)
    for i, (frame, faces) in enumerate(track_faces(open_source(path), cfg)):
        if faces and i % sample_every == 0:
            embeddings.append(embedder.embed(frame.image, largest_face(faces).landmarks))
    if not embeddings:
        raise InputError(f"no face found in {path}")
    return np.mean(embeddings, 0)


def _has_face_metadata(faceset: Faceset) -> bool:
    """True for a faceset, False for a plain folder of frames."""
    return imagemeta.get_text(faceset.paths()[0].read_bytes(), META_KEY) is not None


SOURCE_TAG_HEAD = 1 << 20  # bytes of a video hashed into its tag: fast on any file, distinct for real clips


def source_tag(source: str | Path) -> str:
    """8 hex digits that tell sources apart: a digest of a video's size and first MiB (so the same clip
    copied elsewhere keeps its tag, and two cameras' C0001.MP4 differ), or of an image folder's resolved
    path."""
    path = Path(source)
    digest = hashlib.sha256()
    if path.is_dir():
        digest.update(b"dir\0" + str(path.resolve()).encode("utf-8", "surrogateescape"))
    else:
        digest.update(f"{path.stat().st_size}\0".encode())
        with open(path, "rb") as handle:
            digest.update(handle.read(SOURCE_TAG_HEAD))
    return digest.hexdigest()[:8]


def face_filename(source: str, frame_index: int, track_id: int, fmt: str, tag: str | None = None) -> str:
    """Face file name `<stem>_<tag>_<frame>_t<track>`; sorts by source, frame and track."""
    tag = tag if tag is not None else source_tag(source)
    return f"{Path(source).stem}_{tag}_{frame_index:06d}_t{track_id:02d}.{fmt}"


def check_settings(out_dir: Path, cfg: ExtractConfig) -> None:
    """Refuse to add faces to a folder whose faces have another size, face type or image format.

    Resuming skips faces already on disk; faces of other settings would be kept silently and a faceset
    must be uniform to train on, so the user chooses: a new folder, or delete the old faces.
    """
    if not out_dir.is_dir():
        return
    faces = Faceset(out_dir).paths()
    if not faces:
        return
    try:
        meta = Faceset(out_dir).meta(faces[0])
    except FacedoubleError:
        return  # not one of ours (plain images): nothing to resume, nothing to mix up
    fmt = {".jpeg": "jpg"}.get(faces[0].suffix.lower(), faces[0].suffix.lower().lstrip("."))
    if (meta.size, meta.face_type, fmt) != (cfg.size, cfg.face_type, cfg.image_format):
        raise InputError(f"{out_dir} already holds faces extracted at size {meta.size}, face type {meta.face_type}, "
                         f"format {fmt} (e.g. {faces[0].name}); this run asks for size {cfg.size}, face type "
                         f"{cfg.face_type}, format {cfg.image_format}: extract into another folder, or delete "
                         "those faces first")


class _Finaliser:
    """Turns raw per-frame observations into final ones (gaps filled, smoothed) once enough frames follow.

    Gap filling and smoothing only look `max_gap + 1` and `radius` frames away, so running them on a
    window of that reach around a frame gives exactly the whole-clip result for that frame.
    """

    def __init__(self, max_gap: int, smooth: float):
        self.max_gap, self.smooth = max_gap, smooth
        self.radius = max(1, int(round(3 * smooth))) if smooth > 0 else 0
        self.delay = self.radius + max_gap + 1
        self.raw: list[FaceObs] = []

    def add(self, observations: list[FaceObs]) -> None:
        self.raw += observations

    def final(self, pos: int) -> list[FaceObs]:
        reach = self.radius + self.max_gap + 1
        window = [o for o in self.raw if pos - reach <= o.frame <= pos + reach]
        smoothed = smooth_tracks(fill_gaps(window, self.max_gap), self.smooth)
        self.raw = [o for o in self.raw if o.frame >= pos + 1 - reach]  # keep memory flat on long clips
        return [o for o in smoothed if o.frame == pos]


@dataclasses.dataclass
class TrackStats:
    """Counters filled in while `track_faces` runs."""

    frames_read: int = 0
    frames_analysed: int = 0
    shot_cuts: int = 0


def track_faces(src: FrameSource, cfg: ExtractConfig, stats: TrackStats | None = None,
                progress_postfix: Callable[[], dict] | None = None) -> Iterator[tuple[Frame, list[FaceObs]]]:
    """Every analysed frame with its final faces (tracked, gaps filled, smoothed), in order.

    Decoding runs in a background thread. A frame is yielded once the tracker is `delay` frames past
    it (see _Finaliser), so the caller's work on it overlaps the tracking of later frames.
    """
    stats = stats if stats is not None else TrackStats()
    tracker = _Tracker(cfg)
    finaliser = _Finaliser(cfg.max_gap, cfg.landmark_smooth)
    buffered: collections.deque[tuple[int, Frame]] = collections.deque()
    lo, hi = cfg.window(src.info.frame_count, src.info.first_number)  # --frames/--handles
    frames: Iterator[Frame] = src.frames(lo) if lo else iter(src)
    if hi is not None:
        frames = itertools.takewhile(lambda f: f.index <= hi, frames)
    total = src.info.frame_count if hi is None else hi - lo + 1
    bar = tqdm(total=total, unit="frame", desc="faces", disable=not cfg.progress, dynamic_ncols=True)
    try:
        for frame in _prefetch(frames):
            stats.frames_read += 1
            bar.update(1)
            if frame.index % cfg.every_nth:
                continue
            pos = stats.frames_analysed
            stats.frames_analysed += 1
            finaliser.add(tracker.step(pos, frame.image))
            buffered.append((pos, frame))
            while buffered and buffered[0][0] <= pos - finaliser.delay:
                done_pos, done_frame = buffered.popleft()
                yield done_frame, finaliser.final(done_pos)
            if progress_postfix:
                bar.set_postfix(progress_postfix(), refresh=False)
        while buffered:
            done_pos, done_frame = buffered.popleft()
            yield done_frame, finaliser.final(done_pos)
        stats.shot_cuts = tracker.cuts
    finally:
        bar.close()
        tracker.mesher.close()


def extract(source: str | Path, out_dir: str | Path, cfg: ExtractConfig | None = None) -> ExtractReport:
    """Extract every face of `source` (video or image folder) into the faceset folder `out_dir`."""
    cfg = cfg or ExtractConfig()
    cfg.validate()
    source, out_dir = str(source), Path(out_dir)
    src = open_source(source)  # fails fast with a clear message before anything is created
    # a --frames range outside the clip, or --device cuda without a CUDA provider, fails before anything is written
    cfg.window(src.info.frame_count, src.info.first_number)
    onnx_providers(cfg.device)
    check_settings(out_dir, cfg)
    tag = source_tag(source)
    frame_size = (src.info.width, src.info.height)
    report = ExtractReport(source=source)
    stats = TrackStats()
    embedder = IdentityEmbedder()
    reference = reference_embedding(cfg.reference, embedder) if cfg.reference else None
    track_seen: dict[int, int] = {}
    guard = StreamGuard(src.info.fps, src.info.frame_count, f"input {source}")
    written: list[Path] = []
    # one extract per faceset folder (a second one stops with a one-line error); refuses a read-only folder
    lock = OutputLock(out_dir / LOCK_FILE, "extract")
    remove_temps(out_dir)  # faces a killed run was writing (kill -9 mid-write); held lock: none is live
    pool = ThreadPoolExecutor(max_workers=2)
    pending: list[Future] = []
    try:
        for frame, faces in track_faces(src, cfg, stats, lambda: {"faces": report.faces_written}):
            guard.check(frame.index, frame.image)
            if not faces:
                report.frames_without_face.append(frame.index)
                continue
            if cfg.debug:
                pending.append(pool.submit(_write_debug, out_dir / "_debug", frame, faces))
            for obs in faces:
                name = face_filename(source, frame.index, obs.track_id, cfg.image_format, tag)
                n_seen = track_seen.get(obs.track_id, 0)
                track_seen[obs.track_id] = n_seen + 1
                if (out_dir / name).exists():
                    report.faces_skipped_existing += 1
                    report.tracks[obs.track_id] = report.tracks.get(obs.track_id, 0) + 1
                    continue
                embed = reference is not None or n_seen % cfg.embed_every == 0
                written.append(out_dir / name)
                pending.append(pool.submit(_make_face, out_dir / name, frame, obs, embed, embedder, reference,
                                           cfg, frame_size, source))
            pending = _drain(pending, 16, report)
        pending = _drain(pending, 0, report)
    except PolicyError:
        pool.shutdown(wait=True, cancel_futures=True)
        for path in written:  # a refused input leaves nothing behind
            path.unlink(missing_ok=True)
        raise
    except InputError as exc:
        # The source broke part-way (truncated or corrupt): faces of its readable part would look like a
        # complete faceset, so this run's faces are removed; faces of earlier runs stay.
        pool.shutdown(wait=True, cancel_futures=True)
        removed = sum(path.exists() for path in written)
        for path in written:
            path.unlink(missing_ok=True)
        raise InputError(f"{exc}; the {removed} faces extracted from its readable part were removed") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        lock.release()
    report.frames_read, report.frames_analysed, report.shot_cuts = (
        stats.frames_read, stats.frames_analysed, stats.shot_cuts)
    if not report.tracks:
        raise InputError(f"no faces found in {source} ({report.frames_analysed} frames analysed)")
    atomic_write_json(out_dir / REPORT_FILE, dataclasses.asdict(report) | {"config": dataclasses.asdict(cfg)})
    return report


def _drain(pending: list[Future], limit: int, report: ExtractReport) -> list[Future]:
    """Count finished writes (re-raising their errors); block on the oldest while more than `limit` wait."""
    while len(pending) > limit:
        _count(pending.pop(0).result(), report)
    for future in [f for f in pending if f.done()]:
        _count(future.result(), report)
    return [f for f in pending if not f.done()]


def _count(result: tuple[str, FaceObs] | None, report: ExtractReport) -> None:
    if result is None:  # debug frame
        return
    status, obs = result
    if status == "rejected":
        report.faces_rejected_reference += 1
        return
    report.faces_written += 1
    report.faces_interpolated += int(obs.interpolated)
    report.tracks[obs.track_id] = report.tracks.get(obs.track_id, 0) + 1


def _make_face(path: Path, frame: Frame, obs: FaceObs, embed: bool, embedder: IdentityEmbedder,
               reference: np.ndarray | None, cfg: ExtractConfig, frame_size: tuple[int, int],
               source: str) -> tuple[str, FaceObs]:
    """Warp, embed and write one face (runs on a pool thread)."""
    embedding = embedder.embed(frame.image, obs.landmarks) if embed else None
    if reference is not None and distance(embedding, reference) > cfg.reference_threshold:
        return "rejected", obs
    mat = face_transform(obs.landmarks, cfg.face_type, cfg.size)
    meta = FaceMeta(
        source=source, frame_index=frame.index, timestamp=frame.timestamp, track_id=obs.track_id,
        face_type=cfg.face_type, size=cfg.size, frame_size=frame_size, landmarks=obs.landmarks,
        aligned_landmarks=transform_points(obs.landmarks, mat), transform=mat, inverse=invert(mat),
        detector=f"{cfg.detector}+{cfg.landmarks}", score=obs.score, mesh=obs.mesh, embedding=embedding,
        interpolated=obs.interpolated)
    write_face(path, warp_face(frame.image, mat, cfg.size), meta, cfg.jpeg_quality)
    return "written", obs


def _write_debug(debug_dir: Path, frame: Frame, faces: list[FaceObs]) -> None:
    from facedouble.io.atomic import atomic_write_bytes

    canvas = cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR)
    for obs in faces:
        colour = (0, 200, 255) if obs.interpolated else (0, 255, 0)
        for x, y in obs.mesh[::3]:
            cv2.circle(canvas, (int(x), int(y)), 1, (255, 180, 0), -1)
        for x, y in obs.landmarks:
            cv2.circle(canvas, (int(x), int(y)), 2, colour, -1)
        x0, y0 = obs.landmarks.min(0)
        cv2.putText(canvas, f"track {obs.track_id}", (int(x0), int(y0) - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1)
    ok, buf = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])
    atomic_write_bytes(debug_dir / f"{frame.index:06d}.jpg", buf.tobytes())
