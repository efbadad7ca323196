"""Face tracks across frames: association, gap filling and optional landmark smoothing.

Smoothing filter (off by default): a centred Gaussian moving average of the mesh points along each
contiguous run of a track, sigma = `smooth` frames, window +-3 sigma truncated at the run's ends (the
weights are renormalised there, so the first and last frames are not pulled toward zero).
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class FaceObs:
    """One face in one frame, in frame pixels."""

    frame: int  # position in the analysed frame sequence
    track_id: int
    mesh: np.ndarray  # (478, 2)
    landmarks: np.ndarray  # (68, 2)
    score: float
    interpolated: bool = False


def landmark_box(landmarks: np.ndarray) -> np.ndarray:
    """Bounding box x0, y0, x1, y1 of a point set."""
    return np.concatenate([landmarks.min(0), landmarks.max(0)])


def largest_face(faces: list[FaceObs]) -> FaceObs:
    """The face with the largest landmark box (the subject of a single-subject shot)."""
    return max(faces, key=lambda o: float(np.ptp(o.landmarks, 0).prod()))


def fill_gaps(observations: list[FaceObs], max_gap: int) -> list[FaceObs]:
    """Add interpolated observations for runs of at most `max_gap` missing frames inside each track."""
    by_track: dict[int, list[FaceObs]] = {}
    for obs in observations:
        by_track.setdefault(obs.track_id, []).append(obs)
    filled = list(observations)
    for track in by_track.values():
        track.sort(key=lambda o: o.frame)
        for before, after in zip(track, track[1:], strict=False):
            gap = after.frame - before.frame - 1
            if 0 < gap <= max_gap:
                for k in range(1, gap + 1):
                    t = k / (gap + 1)
                    filled.append(FaceObs(
                        before.frame + k, before.track_id,
                        (1 - t) * before.mesh + t * after.mesh,
                        (1 - t) * before.landmarks + t * after.landmarks,
                        min(before.score, after.score), interpolated=True))
    filled.sort(key=lambda o: (o.frame, o.track_id))
    return filled


def smooth_tracks(observations: list[FaceObs], sigma: float) -> list[FaceObs]:
    """Gaussian-smooth mesh and landmarks along contiguous runs of each track (see module doc)."""
    if sigma <= 0:
        return observations
    radius = max(1, int(round(3 * sigma)))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    by_track: dict[int, list[FaceObs]] = {}
    for obs in observations:
        by_track.setdefault(obs.track_id, []).append(obs)
    out: list[FaceObs] = []
    for track in by_track.values():
        track.sort(key=lambda o: o.frame)
        runs: list[list[FaceObs]] = [[track[0]]]
        for obs in track[1:]:
            (runs[-1].append(obs) if obs.frame == runs[-1][-1].frame + 1 else runs.append([obs]))
        for run in runs:
            meshes = np.stack([o.mesh for o in run])
            lms = np.stack([o.landmarks for o in run])
            for i, obs in enumerate(run):
                lo, hi = max(0, i - radius), min(len(run), i + radius + 1)
                w = kernel[lo - i + radius:hi - i + radius]
                w = w / w.sum()
                out.append(dataclasses.replace(
                    obs, mesh=np.tensordot(w, meshes[lo:hi], 1), landmarks=np.tensordot(w, lms[lo:hi], 1)))
    out.sort(key=lambda o: (o.frame, o.track_id))
    return out
