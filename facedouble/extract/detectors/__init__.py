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


DEVICES = ("cpu", "cuda", "auto")  # extract's --device: the same choices as merge's and train's


def onnx_providers(device: str) -> list[str]:
    """ONNX Runtime execution providers of `device`: cpu; cuda (FacedoubleError when this onnxruntime has
    no CUDA provider, e.g. the CPU-only wheel, or no GPU); auto = CUDA when available, else CPU."""
    if device not in DEVICES:
        raise FacedoubleError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "cpu":
        return ["CPUExecutionProvider"]
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "cuda":
        raise FacedoubleError("--device cuda: ONNX Runtime has no CUDA execution provider here (needs the "
                              "onnxruntime-gpu build and a GPU); use --device cpu or auto")
    return ["CPUExecutionProvider"]


def _retinaface(device: str) -> Detector:
    from facedouble.extract.detectors.retinaface import RetinaFaceDetector

    return RetinaFaceDetector(providers=onnx_providers(device))


DETECTORS: dict[str, Callable[[str], Detector]] = {"retinaface": _retinaface}


def get_detector(name: str, device: str = "cpu") -> Detector:
    """Instantiate the detector registered under `name`, running on `device` (cpu | cuda | auto)."""
    try:
        factory = DETECTORS[name]
    except KeyError:
        raise FacedoubleError(f"unknown detector {name!r}; choose from {', '.join(DETECTORS)}") from None
    return factory(device)
