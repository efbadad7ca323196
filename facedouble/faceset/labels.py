"""Hand-drawn mask labels: include/exclude polygons in aligned-face pixels, kept in the face image's metadata.

Labels live inside the face PNG/JPEG (FaceMeta.labels, schema v2), so they travel with the file through
`faceset sort` moves and copies; no side-car file can drift out of sync. Here: their schema (read and
written with the rest of the metadata, facedouble.faceset.meta); facedouble.mask.labels turns them into masks.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import numpy as np

from facedouble.errors import InputError

MAX_POLYGONS = 64  # per list (include / exclude)
MAX_POINTS = 512  # per polygon
MAX_TOTAL_POINTS = 16_384  # all polygons of one face: keeps its metadata well under imagemeta's size limit
MARGIN = 0.5  # points may lie up to this fraction of the image side outside it (a stroke past the edge)


@dataclasses.dataclass
class FaceLabels:
    """Include polygons (filled) and exclude polygons (cut out), each (N, 2) float in aligned-face pixels."""

    include: list[np.ndarray]
    exclude: list[np.ndarray] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return {"include": [np.asarray(p, np.float64).tolist() for p in self.include],
                "exclude": [np.asarray(p, np.float64).tolist() for p in self.exclude]}

    def to_json(self) -> str:
        """Compact JSON."""
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, text: str, size: int | None = None) -> FaceLabels:
        """Parse and validate; InputError with the reason if anything is off."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"labels are not valid JSON: {exc.msg}") from None
        return cls.from_dict(raw, size=size)

    @classmethod
    def from_dict(cls, raw: Any, size: int | None = None) -> FaceLabels:
        """Validate a parsed object; with `size`, points must lie within MARGIN of the size x size image."""
        if not isinstance(raw, dict):
            raise InputError("labels must be an object with 'include' and 'exclude' lists")
        unknown = set(raw) - {"include", "exclude"}
        if unknown:
            raise InputError(f"labels have unknown field(s): {', '.join(sorted(map(str, unknown)))}")
        labels = cls(include=_polygons(raw.get("include", []), "include", size),
                     exclude=_polygons(raw.get("exclude", []), "exclude", size))
        total = sum(len(p) for p in labels.include + labels.exclude)
        if total > MAX_TOTAL_POINTS:
            raise InputError(f"labels have {total} points in all (at most {MAX_TOTAL_POINTS})")
        return labels

    def validate(self, size: int | None = None) -> FaceLabels:
        """Re-validate (e.g. labels built in code); returns a normalized copy."""
        return FaceLabels.from_dict(self.to_dict(), size=size)


def _polygons(value: Any, name: str, size: int | None) -> list[np.ndarray]:
    if not isinstance(value, list):
        raise InputError(f"labels '{name}' must be a list of polygons")
    if len(value) > MAX_POLYGONS:
        raise InputError(f"labels '{name}' has {len(value)} polygons (at most {MAX_POLYGONS})")
    out = []
    for i, poly in enumerate(value):
        if not isinstance(poly, list) or not 3 <= len(poly) <= MAX_POINTS:
            raise InputError(f"labels '{name}' polygon {i} must be a list of 3..{MAX_POINTS} [x, y] points")
        if not all(isinstance(pt, list) and len(pt) == 2 and all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in pt)
                for pt in poly):
            raise InputError(f"labels '{name}' polygon {i} has a point that is not a finite [x, y]")
        arr = np.asarray(poly, np.float64)
        if size is not None:
            lo, hi = -MARGIN * size, (1 + MARGIN) * size
            if arr.min() < lo or arr.max() > hi:
                raise InputError(f"labels '{name}' polygon {i} lies outside the {size}x{size} face image")
        out.append(arr)
    return out
