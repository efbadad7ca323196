"""Merge settings and the per-frame override sidecar (TOML or JSON), on the project's config system.

Sidecar format (TOML; JSON is the same structure `{"override": [{...}, ...]}`)::

    [[override]]
    frames = "120-180"      # inclusive range; also "42" or "300-" (to the end)
    colour = "mkl"
    erode = 4.0

    [[override]]
    frames = "150-160"      # later rules win where they overlap
    blend = "poisson"

    [[override]]
    frames = "200-240"
    keep_from_plate = "mouth"   # the model's teeth fail here: keep the performer's mouth interior

Only the per-frame settings of `FaceSettings` can be overridden.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from facedouble.colour import get_colour_transfer
from facedouble.config import from_dict, load_toml
from facedouble.errors import FacedoubleError
from facedouble.merge.blend import BLEND_MODES
from facedouble.merge.masks import MASK_MODES
from facedouble.merge.region import check_region, parse_plate_parts


@dataclasses.dataclass
class FaceSettings:
    """How one face is put back; every field may change per frame through overrides."""

    mask: str = "mesh*xseg*learned*-hands"  # any product of hull|mesh, xseg, learned, -hands (README: Masks)
    erode: float = 0.0  # percent of the face size; negative dilates
    blur: float = 4.0  # feather width, percent of the face size
    colour: str = "rct"  # rct | lct | mkl | idt | sot | none
    blend: str = "alpha"  # alpha | poisson
    sharpen: float = 0.0  # unsharp-mask amount, 0 = off
    scale: float = 1.0  # face scale about its centre
    region: str = "face"  # what the model replaces: face | mouth | lower-face | eyes (dubbing)
    keep_from_plate: str = "none"  # plate parts kept over the swap: none | mouth | eyes | mouth,eyes
    edge_match: float = 12.0  # match the face's shading to the plate's along the mask edge, fading over this % of
    # the face size inward (0 = off): removes the step a global colour transfer leaves at the edge (blend.match_edge)

    def validate(self) -> FaceSettings:
        """Raise FacedoubleError (one line) for an impossible value; return self."""
        if self.mask not in MASK_MODES:
            raise FacedoubleError(f"unknown mask mode {self.mask!r} (choose from {', '.join(MASK_MODES)})")
        get_colour_transfer(self.colour)
        if self.blend not in BLEND_MODES:
            raise FacedoubleError(f"unknown blend mode {self.blend!r} (choose from {', '.join(BLEND_MODES)})")
        if not 0.0 <= self.blur <= 50.0:
            raise FacedoubleError(f"blur must be 0..50 (% of face size), got {self.blur}")
        if not -50.0 <= self.erode <= 50.0:
            raise FacedoubleError(f"erode must be -50..50 (% of face size), got {self.erode}")
        if not 0.5 <= self.scale <= 2.0:
            raise FacedoubleError(f"scale must be 0.5..2, got {self.scale}")
        if not 0.0 <= self.sharpen <= 5.0:
            raise FacedoubleError(f"sharpen must be 0..5, got {self.sharpen}")
        if not 0.0 <= self.edge_match <= 50.0:
            raise FacedoubleError(f"edge_match must be 0..50 (% of face size), got {self.edge_match}")
        check_region(self.region)
        parse_plate_parts(self.keep_from_plate)
        return self


@dataclasses.dataclass
class OverrideRule:
    """Settings for a frame range; None fields keep the base value."""

    frames: str
    mask: str | None = None
    erode: float | None = None
    blur: float | None = None
    colour: str | None = None
    blend: str | None = None
    sharpen: float | None = None
    scale: float | None = None
    region: str | None = None
    keep_from_plate: str | None = None
    edge_match: float | None = None

    def range(self) -> tuple[int, int | None]:
        """(first, last) inclusive frame indices; last None = to the end."""
        text = self.frames.strip()
        try:
            if "-" in text:
                first, last = text.split("-", 1)
                lo, hi = int(first), (int(last) if last.strip() else None)
            else:
                lo = hi = int(text)
        except ValueError:
            raise FacedoubleError(f"override frames {self.frames!r} must look like 10, 10-20 or 10-") from None
        if lo < 0 or (hi is not None and hi < lo):
            raise FacedoubleError(f"override frames {self.frames!r} is an empty or negative range")
        return lo, hi


@dataclasses.dataclass
class OverrideFile:
    """The sidecar: an ordered list of rules."""

    override: list[OverrideRule] = dataclasses.field(default_factory=list)


class Overrides:
    """Resolves the settings of each frame: base settings, then every matching rule in file order."""

    def __init__(self, base: FaceSettings, rules: list[OverrideRule] | None = None):
        self.base = base.validate()
        self.rules = [(rule, *rule.range()) for rule in rules or []]
        self._cache: dict[int, FaceSettings] = {}
        for rule, _, _ in self.rules:  # fail before rendering, not at frame 5000
            self._apply(dataclasses.replace(self.base), rule).validate()

    @staticmethod
    def _apply(settings: FaceSettings, rule: OverrideRule) -> FaceSettings:
        changes = {f.name: getattr(rule, f.name) for f in dataclasses.fields(FaceSettings)
                   if getattr(rule, f.name) is not None}
        return dataclasses.replace(settings, **changes)

    def for_frame(self, index: int) -> FaceSettings:
        """Effective settings for frame `index`."""
        hit = self._cache.get(index)
        if hit is None:
            hit = self.base
            for rule, lo, hi in self.rules:
                if lo <= index and (hi is None or index <= hi):
                    hit = self._apply(hit, rule)
            self._cache[index] = hit
        return hit


def load_overrides(path: str | Path | None) -> list[OverrideRule]:
    """Rules from a TOML or JSON sidecar (by suffix); [] for None."""
    if path is None:
        return []
    path = Path(path)
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FacedoubleError(f"override file not found: {path}") from None
        except json.JSONDecodeError as exc:
            raise FacedoubleError(f"override file {path} is not valid JSON: {exc.msg}") from None
        except UnicodeDecodeError:
            raise FacedoubleError(f"override file {path} is not UTF-8 text") from None
        if not isinstance(data, dict):
            raise FacedoubleError(f"override file {path} must hold an object with an 'override' list")
        return from_dict(OverrideFile, data).override
    return load_toml(OverrideFile, path).override
