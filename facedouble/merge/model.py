"""The model interface merge codes against (implemented by `facedouble.train.swapper`)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from facedouble.errors import FacedoubleError


@runtime_checkable
class Swapper(Protocol):
    """A trained dst->src face model.

    `swap(faces)` takes uint8 RGB (N, R, R, 3) faces aligned at `resolution` with `face_type` and
    returns (rgb float32 (N, R, R, 3) in [0, 1], mask float32 (N, R, R) in [0, 1]).
    """

    resolution: int
    face_type: str
    model_hash: str
    consent: dict | None

    def swap(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def load_model(model_dir: str | Path, precision: str = "auto", conv_algo: str = "auto",
               device: str = "cpu") -> Swapper:
    """Load a trained model folder through the train stage's `load_swapper`.

    `precision`: auto (bf16 where the hardware does it natively, else fp32) | fp32 | bf16.
    `conv_algo`: auto (Winograd for wide 3x3 convs on CPU in fp32) | direct | winograd.
    `device`: cpu | cuda | auto (facedouble.merge.config.resolve_device).
    """
    from facedouble.merge.config import resolve_device

    device = resolve_device(device)
    try:
        from facedouble.train.swapper import load_swapper
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("facedouble.train"):
            raise FacedoubleError("the train stage is not installed: cannot load a model") from None
        raise
    return load_swapper(Path(model_dir), device=device, precision=precision, conv_algo=conv_algo)


def check_swapper(model: object) -> Swapper:
    """FacedoubleError unless `model` has the Swapper interface."""
    if not isinstance(model, Swapper):
        raise FacedoubleError(f"{type(model).__name__} does not implement the Swapper interface")
    if not 16 <= int(model.resolution) <= 2048:
        raise FacedoubleError(f"model resolution {model.resolution} out of range")
    return model
