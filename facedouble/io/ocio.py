"""Colour management with OpenColorIO: a plate's colour space <-> the model's working space.

The face model, the detectors and every 8-bit stage work on display-referred sRGB-encoded Rec.709 values
("sRGB Encoded Rec.709 (sRGB)" in the ACES configs, the config's `color_picking` role). A scene-linear
plate (ACEScg, linear Rec.709, ...) is converted into that space for them, and the swapped face is
converted back with the exact inverse transform, so it carries the plate's encoding. Pixels merge did
not change are never converted: they are copied from the plate as read (see facedouble.merge.seqwriters).

Configs: the built-in ones by URI (`ocio://studio-config-latest`, the default; `ocio://default`), or a
config file. Nothing is downloaded: the built-in configs ship inside the opencolorio wheel.

This lives in io/ (not colour/) because the one frame reader converts plates as it decodes them, and
io is the lowest floor of the package (tests/test_layers.py); `facedouble.colour.ocio` re-exports it.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from facedouble.errors import InputError

DEFAULT_CONFIG = "ocio://studio-config-latest"
WORKING_SPACE = "sRGB Encoded Rec.709 (sRGB)"  # the model's space: what 8-bit frames hold
# The names the test plates and most EXRs from OIIO use for the working space and for "no conversion".
_DATA_SPACES = ("raw", "data", "non-color")


@functools.lru_cache(maxsize=8)
def load_config(config: str = DEFAULT_CONFIG):  # noqa: ANN201 - PyOpenColorIO.Config
    """The OCIO config at a URI (`ocio://...`) or path; InputError (one line) when it cannot be loaded."""
    import PyOpenColorIO as ocio  # noqa: N813 - its usual short name

    if not config.startswith("ocio://") and not Path(config).is_file():
        raise InputError(f"OCIO config not found: {config}")
    try:
        return ocio.Config.CreateFromFile(config)
    except Exception as exc:  # PyOpenColorIO raises its own Exception type for every failure
        raise InputError(f"cannot load OCIO config {config}: {' '.join(str(exc).split())}") from None


def canonical_space(name: str, config: str = DEFAULT_CONFIG) -> str:
    """The config's own name for colour space (or alias, or role) `name`; InputError for an unknown one."""
    cfg = load_config(config)
    space = cfg.getColorSpace(name)
    if space is None:
        known = ", ".join(sorted(cs.getName() for cs in cfg.getColorSpaces())[:12])
        raise InputError(f"unknown OCIO colour space {name!r} in {config} (known: {known}, ...)")
    return space.getName()


def quantise(work: np.ndarray) -> np.ndarray:
    """Working-space float RGB -> uint8: round(x * 255), clipped to [0, 255] (NaN as 0)."""
    out = np.multiply(work, np.float32(255.0), dtype=np.float32)  # one temporary, then in place (4K: -30 %)
    np.nan_to_num(out, copy=False, nan=0.0)
    np.clip(out, 0.0, 255.0, out=out)
    np.rint(out, out=out)
    return out.astype(np.uint8)


class ColourConverter:
    """Plate space <-> working space, both ways, on float32 RGB arrays (H, W, 3).

    `identity` when the plate is already in the working space (or is data): then no OCIO processor runs
    and values pass through bit-exact.
    """

    def __init__(self, plate_space: str, config: str = DEFAULT_CONFIG, working_space: str = WORKING_SPACE):
        self.config = config
        self.plate_space = canonical_space(plate_space, config)
        self.working_space = canonical_space(working_space, config)
        cfg = load_config(config)
        self.identity = self.plate_space == self.working_space or self.plate_space.lower() in _DATA_SPACES
        if self.identity:
            self._to_working = self._to_plate = None
        else:
            try:
                self._to_working = cfg.getProcessor(self.plate_space, self.working_space).getDefaultCPUProcessor()
                self._to_plate = cfg.getProcessor(self.working_space, self.plate_space).getDefaultCPUProcessor()
            except Exception as exc:  # an unresolvable transform in a user's config
                raise InputError(f"OCIO cannot convert {self.plate_space!r} to {self.working_space!r}: "
                                 f"{' '.join(str(exc).split())}") from None

    @staticmethod
    def _apply(processor, rgb: np.ndarray) -> np.ndarray:  # noqa: ANN001 - PyOpenColorIO.CPUProcessor
        out = np.ascontiguousarray(rgb, dtype=np.float32).copy()
        if processor is not None and out.size:
            processor.applyRGB(out)  # in place; a packed (H, W, 3) or (N, 3) float32 array
        return out

    def to_working(self, rgb: np.ndarray) -> np.ndarray:
        """Plate values -> working-space values (float32, not clipped)."""
        return self._apply(self._to_working, rgb)

    def to_plate(self, rgb: np.ndarray) -> np.ndarray:
        """Working-space values -> plate values (float32): the exact inverse of `to_working` in [0, 1]."""
        return self._apply(self._to_plate, rgb)

    def working_uint8(self, rgb: np.ndarray) -> np.ndarray:
        """Plate values -> the 8-bit working-space frame every 8-bit stage sees (clipped to [0, 1])."""
        return quantise(self.to_working(rgb))

    def describe(self) -> dict[str, str]:
        """What the conversion is, for records and work-folder checks."""
        return {"ocio": self.config, "colourspace": self.plate_space, "working_space": self.working_space}
