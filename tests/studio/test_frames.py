"""The merge tuning scrubber: the same frames as a fresh read, fewer decodes, bounded memory."""

from __future__ import annotations

import numpy as np
import pytest

from facedouble.errors import InputError
from facedouble.io.video import open_source
from facedouble.studio.frames import Scrubber


def test_scrubbing_gives_the_frames_of_a_fresh_read_with_fewer_decodes(grid_clip):
    clip = grid_clip("bbaf2n")
    every = {f.index: f.image for f in open_source(clip)}
    scrub = Scrubber(clip, cache_bytes=8 * next(iter(every.values())).nbytes)
    order = [10, 11, 12, 20, 19, 30, 5, 6, 70]  # arrow keys, Shift+arrow, a step back, jumps back and forward
    for index in order:
        frame = scrub.frame(index)
        assert frame.index == index and np.array_equal(frame.image, every[index]), index
        assert not frame.image.flags.writeable  # kept frames are shared: nobody may draw into them
    # a fresh read of each would decode 10+1 + 11+1 + ... frames of this MPEG-PS clip (no index to seek)
    assert scrub.decoded < sum(i + 1 for i in order) / 2
    assert len(scrub._frames) <= 8
    with pytest.raises(InputError, match="past the end"):
        scrub.frame(len(every) + 3)
    assert np.array_equal(scrub.frame(71).image, every[71])  # usable after a miss
    scrub.close()


def test_a_preview_from_a_scrubber_frame_is_the_preview_of_a_fresh_read(grid_faceset, grid_clip):
    from facedouble.errors import FacedoubleError
    from facedouble.merge.pipeline import MergeConfig, MergeHooks, preview
    from tests.standin import ShiftSwapper

    faceset = grid_faceset("bbaf2n", every_nth=5)
    hooks = MergeHooks(post_composite=[lambda ctx: None])
    config = MergeConfig(colour="none")
    scrub = Scrubber(grid_clip("bbaf2n"))
    given = preview(ShiftSwapper(64), faceset, 20, hooks, config, frame=scrub.frame(20))
    assert np.array_equal(given, preview(ShiftSwapper(64), faceset, 20, hooks, config))
    with pytest.raises(FacedoubleError, match="is frame 21"):
        preview(ShiftSwapper(64), faceset, 20, hooks, config, frame=scrub.frame(21))
    scrub.close()
