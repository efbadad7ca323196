"""Issue 14: the library API renders nothing unmarked, and no test-only swapper ships in the package."""

from __future__ import annotations

import importlib.util

import pytest

from facedouble.errors import PolicyError
from facedouble.merge.pipeline import MergeHooks, Outputs, merge
from tests.standin import ShiftSwapper


@pytest.mark.parametrize("hooks", [None, MergeHooks(), MergeHooks(finalize=[lambda result: None])])
def test_merge_without_provenance_hooks_is_refused_before_any_work(tmp_path, hooks):
    out = tmp_path / "out.mp4"
    with pytest.raises(PolicyError, match="must be marked"):
        merge(ShiftSwapper(64), tmp_path / "no-faceset", Outputs(video=out), hooks=hooks, progress=False)
    assert not out.exists() and not any(tmp_path.iterdir())


def test_stand_in_swappers_are_not_in_the_package():
    assert importlib.util.find_spec("facedouble.merge.standin") is None
