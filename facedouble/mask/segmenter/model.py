"""The face segmenter: a small U-Net predicting face-visible (1) vs not (0) on an aligned face.

The input is the aligned face at `resolution` (256 px by default). The encoder halves the side five
times (256 -> 8); the decoder climbs back with skip connections to half resolution, and the logits are
upsampled bilinearly to full size: a face mask's edge is smooth, so the last doubling costs nothing in
IoU and saves the most expensive layer. About 0.4 M parameters (1.6 MB fp32).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import torch
from torch import nn
from torch.nn import functional as tnf

from facedouble.errors import InputError


@dataclasses.dataclass
class SegmenterConfig:
    """Shape of a segmenter (stored in state.json; a model's resolution is fixed once trained)."""

    resolution: int = 256
    face_type: str = "full"
    widths: tuple[int, ...] = (16, 32, 48, 64, 96)  # encoder stages at 1/2 .. 1/32 of the side
    # input normalisation: "fixed" (a constant mean and scale) or "image" (each image's own channel means
    # and contrast: a colour cast or dim light reaches the network already undone)
    norm: str = "fixed"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"resolution": self.resolution, "face_type": self.face_type, "widths": list(self.widths),
                "norm": self.norm}

    @classmethod
    def from_dict(cls, raw: Any) -> SegmenterConfig:
        """Validate a stored config; InputError (one line) if anything is off."""
        if not isinstance(raw, dict):
            raise InputError("segmenter config must be an object")
        res, widths, ft = raw.get("resolution"), raw.get("widths"), raw.get("face_type", "full")
        if not isinstance(res, int) or isinstance(res, bool) or not 64 <= res <= 1024 or res % 32:
            raise InputError(f"segmenter resolution {res!r} must be a multiple of 32 in 64..1024")
        if not (isinstance(widths, list) and len(widths) == 5 and all(
                isinstance(w, int) and not isinstance(w, bool) and 4 <= w <= 512 for w in widths)):
            raise InputError("segmenter widths must be 5 integers in 4..512")
        if not isinstance(ft, str):
            raise InputError("segmenter face_type must be a string")
        norm = raw.get("norm", "fixed")  # models saved before the option had the fixed one
        if norm not in ("fixed", "image"):
            raise InputError(f"segmenter norm {norm!r} must be fixed or image")
        return cls(resolution=res, face_type=ft, widths=tuple(widths), norm=norm)


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Segmenter(nn.Module):
    """U-Net: (N, 3, R, R) RGB in [0, 1] -> (N, 1, R, R) logits of face-visible."""

    def __init__(self, cfg: SegmenterConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.widths
        self.register_buffer("mean", torch.tensor([0.5, 0.45, 0.4]).view(1, 3, 1, 1), persistent=False)
        chans = (3, *w)
        self.down = nn.ModuleList(nn.Sequential(_block(chans[i], chans[i + 1], 2), _block(chans[i + 1], chans[i + 1]))
                                  for i in range(5))
        # decoder: from 1/32 up to 1/2 of the side, each stage fusing the encoder's skip at that scale
        self.up = nn.ModuleList(_block(w[i + 1] + w[i], w[i]) for i in reversed(range(4)))
        self.head = nn.Conv2d(w[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits at full resolution."""
        size = x.shape[-2:]
        if self.cfg.norm == "image":
            h = x - x.mean((2, 3), keepdim=True)
            h = h / (h.square().mean((1, 2, 3), keepdim=True).sqrt() + 0.02)
        else:
            h = (x - self.mean) * 4.0
        skips = []
        for stage in self.down:
            h = stage(h)
            skips.append(h)
        h = skips.pop()
        for stage in self.up:
            skip = skips.pop()
            h = tnf.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = stage(torch.cat([h, skip], 1))
        return tnf.interpolate(self.head(h), size=size, mode="bilinear", align_corners=False)


def config_json(cfg: SegmenterConfig) -> str:
    """The config as stored next to the weights."""
    return json.dumps(cfg.to_dict(), sort_keys=True)


def check_weights(model: Segmenter, weights: dict[str, torch.Tensor], where: str) -> None:
    """Refuse (one line) weights that do not fit the model's shape, e.g. another resolution's or widths'."""
    own = model.state_dict()
    missing, extra = sorted(set(own) - set(weights)), sorted(set(weights) - set(own))
    if missing or extra:
        raise InputError(f"{where}: weights do not match a segmenter of this shape "
                         f"({len(missing)} missing, {len(extra)} unexpected tensors)")
    for k, v in own.items():
        if tuple(weights[k].shape) != tuple(v.shape):
            raise InputError(f"{where}: tensor {k} has shape {tuple(weights[k].shape)}, the config says "
                             f"{tuple(v.shape)} (weights of another model shape)")
