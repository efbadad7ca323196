"""`extract` as a Python API: footage -> faceset folder of aligned faces with embedded metadata.

Two passes over the decoded frames:
1. analyse: detect (every `detect_every` frames, or whenever a track is lost), follow each face with the
   mesh model on a crop from its previous landmarks, associate faces to tracks, fill short gaps, smooth.
   The result is cached in the output folder (`.extract-analysis.npz`, numeric arrays only), so an
   interrupted run does not redo it.
2. write: decode again, warp each face with its transform, add the identity embedding, write the face
   image atomically. Faces already on disk are skipped, so a re-run resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from facedouble.errors import FacedoubleError, InputError
from facedouble.extract.align import face_transform, invert, transform_points, warp_face
from facedouble.extract.detectors import get_detector
from facedouble.extract.facetypes import FACE_TYPES
from facedouble.extract.identity import SAME_PERSON_DISTANCE, IdentityEmbedder, distance
from facedouble.extract.landmarks import FaceMeshLandmarker
from facedouble.extract.track import FaceObs, fill_gaps, iou, landmark_box, smooth_tracks
from facedouble.faceset.meta import FaceMeta, write_face
from facedouble.io.atomic import atomic_open, atomic_write_json
from facedouble.io.video import Frame, open_source
from facedouble.log import get_logger

log = get_logger(__name__)
ANALYSIS_FILE = ".extract-analysis.npz"
REPORT_FILE = "extract-report.json"
ANALYSIS_VERSION = 1


@dataclasses.dataclass
class ExtractConfig:
    """Settings of one extraction (CLI flags of the same names)."""

    face_type: str = "full"
    size: int = 256
    detector: str = "retinaface"
    image_format: str = "png"  # png | jpg
    jpeg_quality: int = 95
    every_nth: int = 1  # analyse every Nth frame
    detect_every: int = 8  # re-run the detector at least this often while tracking holds
    max_gap: int = 5  # missed frames between two hits that are filled by interpolation
    smooth: float = 0.0  # landmark smoothing sigma in frames (0 = off)
    # Identity embedding on every Nth face of a track: dlib's ResNet costs ~40-80 ms a face on a CPU core.
    embed_every: int = 10
    reference: str | None = None  # image or faceset: keep only faces of this person
    reference_threshold: float = SAME_PERSON_DISTANCE
    max_faces: int = 8  # per frame
    debug: bool = False  # also write frames with landmarks drawn to _debug/
    progress: bool = True

    def validate(self) -> None:
        """Raise FacedoubleError for settings that cannot work."""
        if self.face_type not in FACE_TYPES:
            raise FacedoubleError(f"unknown face type {self.face_type!r}; choose from {', '.join(FACE_TYPES)}")
        if not 32 <= self.size <= 2048:
            raise FacedoubleError(f"--size must be between 32 and 2048, got {self.size}")
        if self.image_format not in ("png", "jpg"):
            raise FacedoubleError(f"--format must be png or jpg, got {self.image_format!r}")
        if self.every_nth < 1 or self.detect_every < 1 or self.embed_every < 1:
            raise FacedoubleError("--every-nth, --detect-every and --embed-every must be >= 1")

    def analysis_key(self, source: str) -> str:
        """Hash of everything pass 1 depends on: a cached analysis is reused only if it matches."""
        keys = (ANALYSIS_VERSION, str(Path(source).resolve()), Path(source).stat().st_mtime_ns, self.detector,
                self.every_nth, self.detect_every, self.max_gap, self.max_faces)
        return hashlib.sha256(repr(keys).encode()).hexdigest()[:16]


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


class _Tracker:
    """Detector + mesh tracking over the analysed frames."""

    def __init__(self, cfg: ExtractConfig):
        self.cfg = cfg
        self.detector = get_detector(cfg.detector)
        self.mesher = FaceMeshLandmarker()
        self.active: dict[int, tuple[int, np.ndarray, float]] = {}  # id -> (last frame, landmarks, score)
        self.next_id = 0

    def step(self, pos: int, image: np.ndarray) -> list[FaceObs]:
        found: list[FaceObs] = []
        for tid, (last, lms, score) in list(self.active.items()):
            if pos - last > self.cfg.max_gap + 1:
                del self.active[tid]
                continue
            res = self.mesher.from_landmarks(image, lms)
            if res is not None and self._plausible(res.landmarks, lms):
                found.append(FaceObs(pos, tid, res.mesh, res.landmarks, score))
        need_detect = pos % self.cfg.detect_every == 0 or len(found) < len(self.active) or not self.active
        if need_detect:
            for det in self.detector.detect(image)[: self.cfg.max_faces]:
                if any(iou(det.box, landmark_box(o.landmarks)) > 0.3 for o in found):
                    continue
                res = self.mesher.from_points5(image, det.points, det.box)
                if res is None:
                    continue
                box = landmark_box(res.landmarks)
                match = [tid for tid, (_, lms, _) in self.active.items()
                         if tid not in {o.track_id for o in found} and iou(box, landmark_box(lms)) > 0.3]
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
        for obs in kept:
            self.active[obs.track_id] = (pos, obs.landmarks, obs.score)
        return kept

    @staticmethod
    def _plausible(new: np.ndarray, old: np.ndarray) -> bool:
        """Reject a tracked mesh that jumped or collapsed (the crop lost the face)."""
        old_span = np.ptp(old, 0).max()
        new_span = np.ptp(new, 0).max()
        shift = np.linalg.norm(new.mean(0) - old.mean(0))
        return 0.6 < new_span / old_span < 1.6 and shift < 0.5 * old_span


def _analyse(source: str, cfg: ExtractConfig, out_dir: Path) -> dict[str, np.ndarray]:
    cache = out_dir / ANALYSIS_FILE
    key = cfg.analysis_key(source)
    if cache.exists():
        try:
            with np.load(cache, allow_pickle=False) as data:
                if str(data["key"]) == key:
                    log.info("reusing the analysis from an earlier run (%s)", cache.name)
                    return {k: data[k] for k in data.files}
        except (OSError, ValueError, KeyError):
            log.warning("ignoring unreadable analysis cache %s", cache)
    src = open_source(source)
    tracker = _Tracker(cfg)
    observations: list[FaceObs] = []
    frame_index, timestamps, frames_read = [], [], 0
    total = src.info.frame_count
    bar = tqdm(total=total, unit="frame", desc="analyse", disable=not cfg.progress, dynamic_ncols=True)
    try:
        for frame in _prefetch(iter(src)):
            frames_read += 1
            bar.update(1)
            if frame.index % cfg.every_nth:
                continue
            pos = len(frame_index)
            frame_index.append(frame.index)
            timestamps.append(frame.timestamp)
            observations += tracker.step(pos, frame.image)
            bar.set_postfix(faces=len(observations), refresh=False)
    finally:
        bar.close()
        tracker.mesher.close()
    observations = fill_gaps(observations, cfg.max_gap)
    frame_size = (src.info.width, src.info.height)
    n = len(observations)
    result = {
        "key": np.array(key),
        "frames_read": np.array(frames_read),
        "frame_size": np.array(frame_size),
        "frame_index": np.array(frame_index, np.int64),
        "timestamp": np.array(timestamps, np.float64),
        "obs_frame": np.array([o.frame for o in observations], np.int64).reshape(n),
        "obs_track": np.array([o.track_id for o in observations], np.int64).reshape(n),
        "obs_score": np.array([o.score for o in observations], np.float64).reshape(n),
        "obs_interpolated": np.array([o.interpolated for o in observations], bool).reshape(n),
        "obs_mesh": np.array([o.mesh for o in observations], np.float64).reshape(n, 478, 2),
        "obs_landmarks": np.array([o.landmarks for o in observations], np.float64).reshape(n, 68, 2),
    }
    if n:  # nothing is written for footage without faces
        out_dir.mkdir(parents=True, exist_ok=True)
        with atomic_open(cache) as handle:
            np.savez(handle, **result)
    return result


def _observations(analysis: dict[str, np.ndarray], smooth: float) -> list[FaceObs]:
    obs = [FaceObs(int(f), int(t), m, lm, float(s), bool(i)) for f, t, m, lm, s, i in zip(
        analysis["obs_frame"], analysis["obs_track"], analysis["obs_mesh"], analysis["obs_landmarks"],
        analysis["obs_score"], analysis["obs_interpolated"], strict=True)]
    return smooth_tracks(obs, smooth)


def reference_embedding(reference: str, embedder: IdentityEmbedder, cfg: ExtractConfig | None = None) -> np.ndarray:
    """Mean descriptor of the reference image or faceset."""
    from facedouble.faceset.store import Faceset

    path = Path(reference)
    if path.is_dir():
        embeddings = [m.embedding for _, m in Faceset(path).metas() if m.embedding is not None]
        if not embeddings:
            raise InputError(f"reference faceset {path} has no identity embeddings")
        return np.mean(embeddings, 0)
    frames = list(open_source(path))
    tracker = _Tracker(dataclasses.replace(cfg or ExtractConfig(), max_faces=1))
    obs = tracker.step(0, frames[0].image)
    tracker.mesher.close()
    if not obs:
        raise InputError(f"no face found in reference image {path}")
    return embedder.embed(frames[0].image, obs[0].landmarks)


def face_filename(source: str, frame_index: int, track_id: int, fmt: str) -> str:
    """Face file name; sorts by source, frame and track."""
    return f"{Path(source).stem}_{frame_index:06d}_t{track_id:02d}.{fmt}"


def extract(source: str | Path, out_dir: str | Path, cfg: ExtractConfig | None = None) -> ExtractReport:
    """Extract every face of `source` (video or image folder) into the faceset folder `out_dir`."""
    cfg = cfg or ExtractConfig()
    cfg.validate()
    source, out_dir = str(source), Path(out_dir)
    open_source(source)  # fail fast with a clear message before creating anything
    analysis = _analyse(source, cfg, out_dir)
    observations = _observations(analysis, cfg.smooth)
    frame_index = analysis["frame_index"]
    width, height = (int(v) for v in analysis["frame_size"])
    report = ExtractReport(source=source, frames_read=int(analysis["frames_read"]),
                           frames_analysed=len(frame_index))
    by_frame: dict[int, list[FaceObs]] = {}
    for obs in observations:
        by_frame.setdefault(int(frame_index[obs.frame]), []).append(obs)
    report.frames_without_face = [int(i) for i in frame_index if int(i) not in by_frame]
    if not observations:
        raise InputError(f"no faces found in {source} ({report.frames_analysed} frames analysed)")

    embedder = IdentityEmbedder()
    reference = reference_embedding(cfg.reference, embedder, cfg) if cfg.reference else None
    track_seen: dict[int, int] = {}
    track_keep: dict[int, bool] = {}
    debug_dir = out_dir / "_debug"
    pool = ThreadPoolExecutor(max_workers=2)
    pending = []
    bar = tqdm(total=len(observations), unit="face", desc="write", disable=not cfg.progress, dynamic_ncols=True)
    try:
        for frame in _prefetch(iter(open_source(source))):
            faces = by_frame.get(frame.index)
            if not faces:
                continue
            if cfg.debug:
                pending.append(pool.submit(_write_debug, debug_dir, frame, faces))
            for obs in faces:
                bar.update(1)
                name = face_filename(source, frame.index, obs.track_id, cfg.image_format)
                n_seen = track_seen.get(obs.track_id, 0)
                track_seen[obs.track_id] = n_seen + 1
                if (out_dir / name).exists():
                    report.faces_skipped_existing += 1
                    report.tracks[obs.track_id] = report.tracks.get(obs.track_id, 0) + 1
                    continue
                embedding = None
                if n_seen % cfg.embed_every == 0 or reference is not None:
                    embedding = embedder.embed(frame.image, obs.landmarks)
                if reference is not None and embedding is not None:
                    track_keep[obs.track_id] = distance(embedding, reference) <= cfg.reference_threshold
                if reference is not None and not track_keep.get(obs.track_id, False):
                    report.faces_rejected_reference += 1
                    continue
                mat = face_transform(obs.landmarks, cfg.face_type, cfg.size)
                meta = FaceMeta(
                    source=source, frame_index=frame.index, timestamp=frame.timestamp, track_id=obs.track_id,
                    face_type=cfg.face_type, size=cfg.size, frame_size=(width, height),
                    landmarks=obs.landmarks, aligned_landmarks=transform_points(obs.landmarks, mat),
                    transform=mat, inverse=invert(mat), detector=f"{cfg.detector}+mediapipe", score=obs.score,
                    mesh=obs.mesh, embedding=embedding, interpolated=obs.interpolated)
                pending.append(pool.submit(_write_face, out_dir / name, frame.image, mat, meta, cfg))
                report.faces_written += 1
                report.faces_interpolated += int(obs.interpolated)
                report.tracks[obs.track_id] = report.tracks.get(obs.track_id, 0) + 1
                bar.set_postfix(written=report.faces_written, refresh=False)
            pending = _drain(pending, limit=16)
    finally:
        bar.close()
        pool.shutdown(wait=True)
    for p in pending:
        p.result()
    atomic_write_json(out_dir / REPORT_FILE, dataclasses.asdict(report) | {"config": dataclasses.asdict(cfg)})
    return report


def _drain(pending: list, limit: int) -> list:
    """Surface errors of finished writes; block on the oldest while more than `limit` are queued."""
    while len(pending) > limit:
        pending.pop(0).result()
    for future in [f for f in pending if f.done()]:
        future.result()
    return [f for f in pending if not f.done()]


def _write_face(path: Path, image: np.ndarray, mat: np.ndarray, meta: FaceMeta, cfg: ExtractConfig) -> None:
    write_face(path, warp_face(image, mat, cfg.size), meta, cfg.jpeg_quality)


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
