"""Splitting a merge across machines: `--shard i/n` renders a contiguous run of segments; `concat`
checks that every segment is present and remuxes them losslessly into the final outputs.

Shards write into the same work folder (`OUT.parts/`): shared storage, or copy each machine's
`seg_*` files into one folder before running concat.
"""

from __future__ import annotations

import math
import re

from facedouble.errors import FacedoubleError


def parse_shard(text: str) -> tuple[int, int]:
    """'2/4' -> (2, 4); 1-based shard index."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match:
        raise FacedoubleError(f"--shard must look like 2/4, got {text!r}")
    i, n = int(match.group(1)), int(match.group(2))
    if not 1 <= i <= n:
        raise FacedoubleError(f"shard {i}/{n} is out of range (use 1/{n} .. {n}/{n})")
    return i, n


def shard_segments(frame_count: int | None, segment_frames: int, shard: tuple[int, int]) -> tuple[int, int | None]:
    """[first, end) segment indices of shard i/n (1-based); end None = to the end of the clip.

    The last shard always runs to the end of the clip, so a container that under-reports its frame
    count still gets every frame rendered.
    """
    i, n = shard
    if not 1 <= i <= n:
        raise FacedoubleError(f"shard {i}/{n} is out of range (use 1/{n} .. {n}/{n})")
    if n == 1:
        return 0, None
    if not frame_count:
        raise FacedoubleError("the clip's frame count is unknown, so it cannot be split into shards")
    total = math.ceil(frame_count / segment_frames)
    if n > total:
        raise FacedoubleError(f"{n} shards for {total} segments; use fewer shards or a smaller segment_frames")
    return (i - 1) * total // n, (i * total // n if i < n else None)
