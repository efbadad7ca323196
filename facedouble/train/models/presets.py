"""Model config, named presets and the factory that builds a model from a config."""

from __future__ import annotations

import dataclasses

from torch import nn

from facedouble.errors import FacedoubleError
from facedouble.train.models.blocks import resolution_step


@dataclasses.dataclass
class ModelConfig:
    """Everything that fixes a model's shape; saved with every checkpoint."""

    arch: str = "df"  # df | liae
    opts: str = ""  # any of "u" (pixel-norm code), "d" (double output res), "t" (one more downscale)
    resolution: int = 128
    face_type: str = "full"
    ae_dims: int = 256
    e_dims: int = 64
    d_dims: int = 64
    d_mask_dims: int = 22

    def validate(self) -> None:
        """Raise FacedoubleError if the combination cannot be built."""
        if self.arch not in ("df", "liae"):
            raise FacedoubleError(f"unknown model arch {self.arch!r} (use df or liae)")
        if set(self.opts) - set("udt"):
            raise FacedoubleError(f"unknown arch option(s) {self.opts!r} (letters u, d, t)")
        step = resolution_step(self.opts)
        if not (32 <= self.resolution <= 512 and self.resolution % step == 0):
            raise FacedoubleError(f"resolution {self.resolution} must be 32..512 and a multiple of {step} "
                                  f"with options {self.opts!r}")
        for name in ("ae_dims", "e_dims", "d_dims", "d_mask_dims"):
            if getattr(self, name) < 1:
                raise FacedoubleError(f"{name} must be positive")


PRESETS: dict[str, ModelConfig] = {
    # DFL Quick96: DF-UD, 96 px full face, ae/e/d/mask 128/64/64/16.
    "quick96": ModelConfig("df", "ud", 96, "full", 128, 64, 64, 16),
    # DFL SAEHD defaults (ae/e/d 256/64/64, mask 22) at 128 px.
    "saehd-df-128": ModelConfig("df", "", 128, "full", 256, 64, 64, 22),
    "saehd-liae-ud-128": ModelConfig("liae", "ud", 128, "full", 256, 64, 64, 22),
    # For tests and smoke runs: same code paths, ~1 M parameters, 64 px.
    "tiny": ModelConfig("df", "u", 64, "full", 64, 16, 16, 8),
}


def preset(name: str) -> ModelConfig:
    """A copy of the named preset."""
    if name not in PRESETS:
        raise FacedoubleError(f"unknown preset {name!r} (choose from {', '.join(PRESETS)})")
    return dataclasses.replace(PRESETS[name])


def build_model(cfg: ModelConfig) -> nn.Module:
    """Instantiate the DF or LIAE model described by `cfg` (Glorot-initialised)."""
    from facedouble.train.models.df import DF
    from facedouble.train.models.liae import LIAE

    cfg.validate()
    cls = DF if cfg.arch == "df" else LIAE
    return cls(cfg.resolution, cfg.ae_dims, cfg.e_dims, cfg.d_dims, cfg.d_mask_dims, cfg.opts)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
