"""Where and how a training session computes: the device, torch's thread count, bf16 or fp32."""

from __future__ import annotations

import os

import torch

from facedouble.errors import FacedoubleError
from facedouble.nn.precision import use_bf16
from facedouble.train.config import TrainConfig

__all__ = ["choose_device", "set_threads", "use_bf16"]


def choose_device(train_cfg: TrainConfig) -> torch.device:
    """The rank's device: CUDA (this rank's LOCAL_RANK GPU) when asked or when `auto` finds one, else the CPU."""
    want_cuda = train_cfg.device == "cuda" or (train_cfg.device == "auto" and torch.cuda.is_available())
    if want_cuda and not torch.cuda.is_available():
        raise FacedoubleError("--device cuda requested but CUDA is not available")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return torch.device(f"cuda:{local}" if want_cuda else "cpu")


def set_threads(train_cfg: TrainConfig) -> None:
    """torch's intra-op thread count, when the config sets one (0 keeps torch's default)."""
    if train_cfg.threads > 0:
        torch.set_num_threads(train_cfg.threads)
