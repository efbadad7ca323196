"""Face detector backends, keyed by the name the CLI accepts (`--detector`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol

import numpy as np

from facedouble.errors import FacedoubleError


@dataclasses.dataclass
class Detection:
    """One detected face in frame pixels."""

    box: np.ndarray  # (4,) x0, y0, x1, y1
    score: float
    points: np.ndarray  # (5, 2): right eye, left eye (image left to right), nose, mouth corners


class Detector(Protocol):
    """A face detector: RGB uint8 frame -> detections."""

    name: str

    def detect(self, frame_rgb: np.ndarray) -> list[Detection]: ...


def _retinaface() -> Detector:
    from facedouble.extract.detectors.retinaface import RetinaFaceDetector

    return RetinaFaceDetector()


DETECTORS: dict[str, Callable[[], Detector]] = {"retinaface": _retinaface}


def get_detector(name: str) -> Detector:
    """Instantiate the detector registered under `name`."""
    try:
        return DETECTORS[name]()
    except KeyError:
        raise FacedoubleError(f"unknown detector {name!r}; choose from {', '.join(DETECTORS)}") from None
