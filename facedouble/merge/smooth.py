"""Temporal smoothing of the per-frame face transforms along each track.

Filter: a zero-phase Gaussian over time applied to the six entries of the aligned->source affine
(`inverse`), separately for each contiguous run of a track (a gap of more than `max_gap` frames starts
a new run; a cut or a lost face must not be blended into the next shot). Parameters:

* `sigma` (frames, default 1.0): standard deviation. 0 disables. 1.0 removes the 1-2 px landmark
  jitter of a 25 fps detector while a face moving at constant speed is not delayed at all (the
  kernel is symmetric, so a linear motion passes unchanged; only accelerations are softened).
* kernel truncated at 3 sigma, edges handled by repeating the end value (`nearest`).

Averaging similarity matrices gives a similarity matrix, so the smoothed transform still has no
shear. Merge is offline, so a non-causal filter (no lag) is preferable to a causal One-Euro filter.
The whole clip's tracks are smoothed before any shard renders, so every shard sees the same result.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from scipy.ndimage import gaussian_filter1d


def smooth_track(frame_indices: list[int], inverses: np.ndarray, sigma: float, max_gap: int = 1) -> np.ndarray:
    """Smoothed copies of `inverses` (N, 2, 3), ordered by `frame_indices` (sorted, one per frame)."""
    inverses = np.asarray(inverses, np.float64)
    if sigma <= 0 or len(inverses) < 2:
        return inverses.copy()
    out = inverses.copy()
    start = 0
    for i in range(1, len(frame_indices) + 1):
        if i == len(frame_indices) or frame_indices[i] - frame_indices[i - 1] > max_gap:
            if i - start >= 2:
                run = inverses[start:i].reshape(i - start, 6)
                out[start:i] = gaussian_filter1d(run, sigma, axis=0, mode="nearest", truncate=3.0).reshape(-1, 2, 3)
            start = i
    return out


def smooth_all(faces: list[tuple[int, int, np.ndarray]], sigma: float) -> list[np.ndarray]:
    """Smooth (frame_index, track_id, inverse) triples per track; results in input order."""
    by_track: dict[int, list[int]] = defaultdict(list)
    for pos, (_, track, _) in enumerate(faces):
        by_track[track].append(pos)
    out: list[np.ndarray] = [np.asarray(f[2], np.float64) for f in faces]
    for positions in by_track.values():
        positions.sort(key=lambda p: faces[p][0])
        frames = [faces[p][0] for p in positions]
        smoothed = smooth_track(frames, np.stack([faces[p][2] for p in positions]), sigma)
        for p, inv in zip(positions, smoothed, strict=True):
            out[p] = inv
    return out
