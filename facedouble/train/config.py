"""Training options: TrainConfig and its checks (the model's shape options are ModelConfig, in models.presets)."""

from __future__ import annotations

import dataclasses
import math

from facedouble.errors import FacedoubleError
from facedouble.train.data import AugmentConfig
from facedouble.train.models.presets import ModelConfig

__all__ = ["ModelConfig", "TrainConfig"]


@dataclasses.dataclass
class TrainConfig:
    """Training options (saved with each checkpoint; may change between sessions)."""

    batch_size: int = 8
    # adabelief (DFL's SAEHD) | rmsprop (DFL's Quick96) | adam. optimizer, lr and lr_dropout default to the
    # preset's DFL recipe for a new model (models.presets.TRAIN_RECIPES: quick96 = rmsprop 2e-4, lr_dropout
    # 0.3); the values here are SAEHD's, the recipe of every other preset and of a bare TrainConfig()
    optimizer: str = "adabelief"
    # AdaBelief/RMSprop step: compiled (one fused pass per tensor, 3-4x faster on CPU, 5-40 s to compile once) |
    # eager | auto = compiled on a CPU with a C++ compiler unless the session is capped short (facedouble.train.optim)
    optimizer_kernel: str = "auto"
    lr: float = 5e-5
    lr_dropout: float = 1.0  # probability an update element is kept; DFL's lr-dropout = 0.3
    clipnorm: float = 0.0  # global gradient-norm clip; 0 = off (DFL's clipgrad uses 1.0)
    masked_training: bool = True
    eyes_mouth_prio: bool = False
    gan_power: float = 0.0  # 0..1 weight of the patch-GAN loss on src->src; 0 = off
    gan_dims: int = 16
    true_face_power: float = 0.0  # weight of the code-discriminator loss (DF only); 0 = off
    # bf16 autocast with fp32 master weights; None = auto: on where the hardware does bf16 natively (CUDA,
    # AVX-512 BF16/AMX CPUs), off elsewhere, where emulated bf16 is ~10x slower (facedouble.nn.precision)
    bf16: bool | None = None
    channels_last: bool = True
    # 3x3 conv weight gradients: gemm (one im2col GEMM, 1.05-2.7x faster than oneDNN's kernel on AVX2) |
    # native | auto = gemm on a CPU in fp32, native under bf16 and on GPUs (facedouble.train.models.gemm_grad)
    conv_weight_grad: str = "auto"
    compile: bool = False  # torch.compile the model
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # torch intra-op threads; 0 = torch default
    seed: int = 0
    workers: int = 2  # background sample threads; 0 = inline
    save_every_min: float = 25.0
    preview_every_min: float = 10.0
    keep_last: int = 3
    max_iters: int = 0  # stop when the iteration count reaches this total; 0 = no limit
    max_minutes: float = 0.0  # stop after this many minutes in this session; 0 = no limit
    pretrain: bool = False  # train on one faceset as both identities (no consent needed)
    random_warp: bool = True
    random_flip: bool = True
    color_aug: float = 0.0
    ct_mode: str = "none"  # none or a merge colour transfer name (rct, lct, mkl, idt, sot)

    def __post_init__(self) -> None:
        self.validate()  # every way in (CLI, TOML, API, a resumed state.json) gets the same checks

    def validate(self) -> TrainConfig:
        """Raise a one-line FacedoubleError for a setting that cannot work; return self."""
        from facedouble.train.models.gemm_grad import WEIGHT_GRAD_MODES
        from facedouble.train.optim import OPTIMIZER_KERNELS, OPTIMIZERS

        choices = {"optimizer": tuple(OPTIMIZERS), "optimizer_kernel": OPTIMIZER_KERNELS,
                   "conv_weight_grad": WEIGHT_GRAD_MODES, "device": ("auto", "cpu", "cuda")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                what = "optimizer kernel" if name == "optimizer_kernel" else name
                raise FacedoubleError(f"unknown {what} {getattr(self, name)!r} (use {', '.join(allowed)})")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise FacedoubleError(f"lr must be a positive number, got {self.lr}")
        if not 0 < self.lr_dropout <= 1:
            raise FacedoubleError(f"lr_dropout is a keep probability in (0, 1], got {self.lr_dropout}")
        for name, lo in (("batch_size", 1), ("gan_dims", 1), ("keep_last", 1), ("threads", 0), ("workers", 0),
                         ("max_iters", 0)):
            if getattr(self, name) < lo:
                raise FacedoubleError(f"{name} must be >= {lo}, got {getattr(self, name)}")
        for name in ("clipnorm", "gan_power", "true_face_power", "max_minutes", "color_aug"):
            if not getattr(self, name) >= 0:
                raise FacedoubleError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("save_every_min", "preview_every_min"):
            if not getattr(self, name) > 0:
                raise FacedoubleError(f"{name} must be > 0 minutes, got {getattr(self, name)}")
        return self

    def augment(self) -> AugmentConfig:
        """The augmentation part of this config."""
        return AugmentConfig(random_warp=self.random_warp, random_flip=self.random_flip,
                             color_aug=self.color_aug, ct_mode=self.ct_mode)
