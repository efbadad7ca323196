"""Explicit-content guard: the decision rule on recorded scores, and the real detector on GRID."""

from __future__ import annotations

import pytest
from conftest import grid_clip, read_frames

from facedouble.errors import PolicyError
from facedouble.policy import guard

GRID_CLIPS = ["bbaf2n", "id2_vcd_swwp2s", "lbbc2a", "lrwp9a", "lwbsza", "pwij3p", "sbia1a", "sbwe5n",
              "swiz3n"]


def test_decision_rule_on_recorded_scores():
    # scores recorded from open_nsfw: GRID talking heads (<= 0.07) and explicit-looking outputs
    assert not guard.decide([0.006, 0.014, 0.005, 0.066, 0.037]).explicit
    assert not guard.decide([0.85, 0.02, 0.03]).explicit  # one borderline frame is not enough
    assert guard.decide([0.85, 0.02, 0.81]).explicit  # two frames above THRESHOLD
    assert guard.decide([0.97]).explicit  # one unambiguous still
    assert not guard.decide([]).explicit
    assert not guard.decide([0.79] * 10).explicit


def test_no_way_to_disable():
    import inspect

    assert "disable" not in inspect.signature(guard.check_frames).parameters


@pytest.mark.parametrize("clip", GRID_CLIPS)
def test_real_detector_passes_grid(clip):
    frames = read_frames(grid_clip(clip))
    sampled = [frames[i] for i in guard.sample_indices(len(frames), 25.0)]
    verdict = guard.check_frames(sampled)
    assert not verdict.explicit and verdict.max_score < 0.2


def test_check_frames_raises_policy_error(monkeypatch):
    monkeypatch.setattr(guard, "score_frames", lambda frames: [0.99 for _ in frames])
    with pytest.raises(PolicyError, match="explicit content"):
        guard.check_frames([object()], what="merge output")
