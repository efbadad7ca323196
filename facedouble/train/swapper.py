"""The contract the merge stage codes against: load a trained model, swap aligned dst faces.

    sw = load_swapper(model_dir)
    rgb, mask = sw.swap(faces)   # faces uint8 (N, res, res, 3) RGB, aligned like the training set
    # rgb float32 (N, res, res, 3) in [0,1]; mask float32 (N, res, res) in [0,1]

Attributes: resolution, face_type, model_hash (sha256 of the weights file), consent (the consent
record info stored with the model, or None), bf16 (whether inference runs under bf16 autocast: by default
only where the hardware does bf16 natively, see `facedouble.nn.precision`), winograd (how many wide 3x3
convs run as Winograd F(4x4, 3x3): by default on CPU in fp32, see `facedouble.train.models.winograd`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facedouble.config import from_dict
from facedouble.errors import FacedoubleError, PolicyError
from facedouble.nn import checkpoint as ck
from facedouble.nn.precision import CONV_ALGOS, use_bf16
from facedouble.train.models import winograd
from facedouble.train.models.presets import ModelConfig, build_model


@dataclasses.dataclass
class Swapper:
    """A trained model's dst->src path, ready for inference."""

    model: torch.nn.Module
    config: ModelConfig
    resolution: int
    face_type: str
    model_hash: str
    consent: dict[str, Any] | None
    iteration: int
    batch_size: int = 16
    device: str = "cpu"
    bf16: bool = False
    winograd: int = 0
    # the checkpoint's consent seal (facedouble.consent.seal); "" when it has none. None: not loaded from
    # a checkpoint (in-memory test stand-ins). Renders and previews verify it against the workspace key.
    consent_seal: str | None = None

    def swap(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Aligned dst faces uint8 RGB N×res×res×3 -> (rgb float32 N×res×res×3, mask float32 N×res×res)."""
        faces = np.asarray(faces)
        if faces.ndim == 3:
            faces = faces[None]
        r = self.resolution
        if faces.dtype != np.uint8 or faces.ndim != 4 or faces.shape[1:] != (r, r, 3):
            raise FacedoubleError(f"swap expects uint8 faces of shape (N, {r}, {r}, 3), got "
                                  f"{faces.dtype} {faces.shape}")
        rgb = np.empty((len(faces), r, r, 3), np.float32)
        mask = np.empty((len(faces), r, r), np.float32)
        amp = torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16, enabled=self.bf16)
        with torch.inference_mode(), amp:
            for i in range(0, len(faces), self.batch_size):
                x = torch.from_numpy(faces[i:i + self.batch_size]).to(self.device)
                # NHWC uint8 -> NCHW float with channels-last strides: no copy, and oneDNN's fast layout
                x = x.permute(0, 3, 1, 2).float().div_(255)
                out_rgb, out_mask = self.model.swap(x)
                rgb[i:i + len(x)] = out_rgb.float().permute(0, 2, 3, 1).cpu().numpy()
                mask[i:i + len(x)] = out_mask.float()[:, 0].cpu().numpy()
        return rgb, mask


def load_swapper(model_dir: str | Path, device: str = "cpu", batch_size: int = 16,
                 precision: str = "auto", conv_algo: str = "auto") -> Swapper:
    """Load the newest checkpoint of `model_dir` (sha256-verified) for inference.

    `precision`: "auto" (bf16 autocast where the hardware does bf16 natively, else fp32), "fp32" or "bf16".
    bf16 changes the output by well under one 8-bit level (tests/train/test_swapper.py).
    `conv_algo`: "auto" (Winograd for the wide 3x3 convs when running fp32 on a CPU, where direct conv is
    at the CPU's ceiling; GPUs and bf16 keep their own kernels), "direct" or "winograd" (every 3x3 conv,
    however narrow; fp32 only). Winograd changes the output by ~1e-5 (tests/train/test_winograd.py).
    """
    if conv_algo not in CONV_ALGOS:
        raise FacedoubleError(f"unknown conv algorithm {conv_algo!r} (choose from {', '.join(CONV_ALGOS)})")
    loaded = ck.load_checkpoint(model_dir, with_optimizer=False)
    if loaded.state.get("pretrain_only"):
        raise PolicyError(f"{model_dir} is only pretrained; train it on a consented src faceset before swapping")
    cfg = from_dict(ModelConfig, loaded.state["model"])
    model = build_model(cfg)
    try:
        model.load_state_dict(loaded.weights)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise FacedoubleError(f"{model_dir}: weights do not fit the model config ({first})") from None
    model.eval().to(device).to(memory_format=torch.channels_last)
    bf16 = use_bf16(precision, device)
    if conv_algo == "winograd" and bf16:
        raise FacedoubleError("Winograd convolution is fp32 only: use --precision fp32 with it")
    converted = 0
    if conv_algo == "winograd":
        converted = winograd.convert(model, min_width=0)
    elif conv_algo == "auto" and not bf16 and torch.device(device).type == "cpu":
        converted = winograd.convert(model)
    return Swapper(model=model, config=cfg, resolution=cfg.resolution, face_type=cfg.face_type,
                   model_hash=loaded.weights_sha256, consent=loaded.state.get("consent"),
                   iteration=int(loaded.state["iteration"]), batch_size=batch_size, device=device,
                   bf16=bf16, winograd=converted, consent_seal=_consent_seal(model_dir))


def _consent_seal(model_dir: str | Path) -> str:
    """The newest checkpoint's consent seal, "" if it has none (then every render refuses the model)."""
    try:
        from facedouble.consent.seal import read_seal
    except ImportError:
        return ""  # fail closed: without the trust package the seal cannot be read, so it counts as missing
    return read_seal(ck.checkpoint_dir(model_dir)[0]) or ""
