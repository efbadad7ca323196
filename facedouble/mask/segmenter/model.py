"""The face segmenter: a small U-Net predicting face-visible (1) vs not (0) on an aligned face.

The input is the aligned face at `resolution` (256 px by default). The encoder halves the side five
times (256 -> 8); the decoder climbs back with skip connections to half resolution, and the logits are
upsampled bilinearly to full size: a face mask's edge is smooth, so the last doubling costs nothing in
IoU and saves the most expensive layer. About 0.4 M parameters (1.6 MB fp32).

With `prior = "outline"` the network also gets a fourth input channel: the face's outline (the mesh's face
oval, facedouble.face.mesh.outline_mask) filled, in the same aligned pixels. The outline from the landmarks
says where the face ends; what the network must still learn from the pixels is what covers the face (hands,
glasses, a microphone) and where a user's labels depart from the outline. Such a model needs each face's
landmarks wherever it runs (a faceset's metadata; merge's face jobs), and `predict` refuses to run it without.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import torch
from torch import nn
from torch.nn import functional as tnf

from facedouble.errors import InputError

PRIORS = ("none", "outline")


@dataclasses.dataclass
class SegmenterConfig:
    """Shape of a segmenter (stored in state.json; a model's resolution is fixed once trained)."""

    resolution: int = 256
    face_type: str = "full"
    widths: tuple[int, ...] = (16, 32, 48, 64, 96)  # encoder stages at 1/2 .. 1/32 of the side
    # input normalisation: "fixed" (a constant mean and scale) or "image" (each image's own channel means
    # and contrast: a colour cast or dim light reaches the network already undone)
    norm: str = "fixed"
    prior: str = "none"  # "outline": a 4th input channel, the landmarks' face outline (module docstring)

    @property
    def in_channels(self) -> int:
        """RGB, plus the outline channel for `prior = "outline"`."""
        return 4 if self.prior == "outline" else 3

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"resolution": self.resolution, "face_type": self.face_type, "widths": list(self.widths),
                "norm": self.norm, "prior": self.prior}

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
        prior = raw.get("prior", "none")  # models saved before the option had none
        if prior not in PRIORS:
            raise InputError(f"segmenter prior {prior!r} must be one of {', '.join(PRIORS)}")
        return cls(resolution=res, face_type=ft, widths=tuple(widths), norm=norm, prior=prior)


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Segmenter(nn.Module):
    """U-Net: (N, C, R, R) in [0, 1] -> (N, 1, R, R) logits of face-visible; C = 3 (RGB), or 4 (RGB and the
    filled face outline) for `prior = "outline"`."""

    def __init__(self, cfg: SegmenterConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.widths
        self.register_buffer("mean", torch.tensor([0.5, 0.45, 0.4]).view(1, 3, 1, 1), persistent=False)
        chans = (cfg.in_channels, *w)
        self.down = nn.ModuleList(nn.Sequential(_block(chans[i], chans[i + 1], 2), _block(chans[i + 1], chans[i + 1]))
                                  for i in range(5))
        # decoder: from 1/32 up to 1/2 of the side, each stage fusing the encoder's skip at that scale
        self.up = nn.ModuleList(_block(w[i + 1] + w[i], w[i]) for i in reversed(range(4)))
        self.head = nn.Conv2d(w[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits at full resolution."""
        size = x.shape[-2:]
        if x.shape[1] != self.cfg.in_channels:
            raise InputError(f"segmenter input has {x.shape[1]} channels, this model takes {self.cfg.in_channels}"
                             + (" (RGB and the face outline)" if self.cfg.prior == "outline" else " (RGB)"))
        rgb = x[:, :3]
        if self.cfg.norm == "image":
            h = rgb - rgb.mean((2, 3), keepdim=True)
            h = h / (h.square().mean((1, 2, 3), keepdim=True).sqrt() + 0.02)
        else:
            h = (rgb - self.mean) * 4.0
        if self.cfg.prior == "outline":
            h = torch.cat([h, (x[:, 3:] - 0.5) * 4.0], 1)
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


def widen_input(model: Segmenter, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`weights` of an RGB segmenter made to fit `model`, which takes the outline channel too: the first
    convolution gets zero weights for the new channel, so the widened model starts as the RGB one predicts
    and fine-tuning learns what the outline adds. Other weights pass unchanged (check_weights judges them)."""
    own = model.state_dict()
    out = dict(weights)
    for k, v in weights.items():
        target = own.get(k)
        if target is not None and v.ndim == 4 and target.ndim == 4 and v.shape[1] + 1 == target.shape[1] \
                and v.shape[0] == target.shape[0] and v.shape[2:] == target.shape[2:]:
            out[k] = torch.cat([v, torch.zeros_like(v[:, :1])], 1)
    return out


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
