"""Colour transfer registry, shared by merge and train (below both: it imports neither).

Every transfer has the signature `transfer(src_face, target_face, mask) -> face`: float32 RGB
(H, W, 3) in [0, 1] for the faces, (H, W) in [0, 1] for the mask. Statistics are taken only where the
mask is set, so hair, background and the other face's surroundings do not shift the colours.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from facedouble.colour.idt import idt
from facedouble.colour.lct import lct
from facedouble.colour.mkl import mkl
from facedouble.colour.rct import rct
from facedouble.colour.sot import sot
from facedouble.errors import FacedoubleError

ColourTransfer = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def none(src: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """No colour change."""
    return src


COLOUR_TRANSFERS: dict[str, ColourTransfer] = {
    "rct": rct, "lct": lct, "mkl": mkl, "idt": idt, "sot": sot, "none": none,
}


def get_colour_transfer(name: str) -> ColourTransfer:
    """The transfer called `name`; FacedoubleError listing the choices if there is none."""
    try:
        return COLOUR_TRANSFERS[name]
    except KeyError:
        raise FacedoubleError(f"unknown colour transfer {name!r} (choose from "
                              f"{', '.join(COLOUR_TRANSFERS)})") from None


__all__ = ["COLOUR_TRANSFERS", "ColourTransfer", "get_colour_transfer"]
