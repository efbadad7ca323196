"""`--frames A-B` / `--handles N`: which source frames a stage works on (merge and extract share the meaning).

A and B are the source's own frame numbers, inclusive: a video's count from 0, an image sequence's are its
file numbers (e.g. 1001). The handles grow the range on both sides; the result is clipped to the clip.
"""

from __future__ import annotations

import re

from facedouble.errors import FacedoubleError


def parse_frames(frames: str) -> tuple[int, int] | None:
    """(A, B) of "A-B" (inclusive source frame numbers), None for "" (the whole clip); FacedoubleError else."""
    if not frames:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", str(frames))
    if not match or int(match.group(1)) > int(match.group(2)):
        raise FacedoubleError(f"frames must look like A-B with A <= B (e.g. 1001-1050), got {frames!r}")
    return int(match.group(1)), int(match.group(2))


def frame_window(frames: str, handles: int, frame_count: int | None,
                 first_number: int = 0) -> tuple[int, int | None]:
    """[first, last] frame indices (0-based decode order) of `frames` grown by `handles`, clipped to the clip
    (last None = to the clip's end; (0, None) without `frames`). `first_number` is the source's first frame
    number (an image sequence's, e.g. 1001), so `frames` names the source's own numbers."""
    rng = parse_frames(frames)
    if rng is None:
        return 0, None
    if rng[1] < first_number:
        raise FacedoubleError(f"frames {frames} end before the clip's first frame ({first_number})")
    first, last = max(0, rng[0] - first_number - handles), rng[1] - first_number + handles
    if frame_count:
        if first >= frame_count:
            raise FacedoubleError(f"frames {frames} start after the clip's last frame "
                                  f"({first_number + frame_count - 1})")
        last = min(last, frame_count - 1)
    return first, last
