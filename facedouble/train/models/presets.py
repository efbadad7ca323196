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
    # dst facesets (one decoder each, DF only): set by the number of `train --dst`; 1 in checkpoints made before
    dst_count: int = 1

    def validate(self) -> None:
        """Raise FacedoubleError if the combination cannot be built."""
        if self.dst_count < 1:
            raise FacedoubleError(f"dst_count must be >= 1, got {self.dst_count}")
        if self.dst_count > 1 and self.arch != "df":
            raise FacedoubleError(f"several --dst facesets need a DF model (--arch df): {self.arch} has one "
                                  "decoder shared by both identities")
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


# Each preset's training recipe, DeepFaceLab's own for the model it reproduces, so that "quick96" means the
# same training as DFL's Quick96 and speed comparisons are of implementations, not recipes. A new model
# starts from its preset's recipe; any optimizer/lr/lr_dropout given (flag, --set, TOML) wins, and a
# resumed model keeps what it was trained with. Facts from DFL's source (iperov/DeepFaceLab):
#  - Quick96 (models/Model_Quick96): RMSprop lr 2e-4, lr_dropout 0.3 (keep probability), rho 0.9, epsilon
#    1e-7, no clipnorm, batch fixed at 4 (not part of the recipe here: --batch-size stays the user's).
#  - SAEHD (models/Model_SAEHD): AdaBelief (option adabelief, default on) lr 5e-5, lr_dropout off by default
#    (0.3 when enabled), clipnorm 1.0 only with clipgrad (default off); batch is the user's (DFL suggests 8
#    on a GPU with >= 4 GB, else 4). These equal TrainConfig's own defaults.
TRAIN_RECIPES: dict[str, dict[str, str | float]] = {
    "quick96": {"optimizer": "rmsprop", "lr": 2e-4, "lr_dropout": 0.3},
    "saehd-df-128": {"optimizer": "adabelief", "lr": 5e-5, "lr_dropout": 1.0},
    "saehd-liae-ud-128": {"optimizer": "adabelief", "lr": 5e-5, "lr_dropout": 1.0},
    "tiny": {"optimizer": "adabelief", "lr": 5e-5, "lr_dropout": 1.0},  # SAEHD's, as the tests have always used
}


def train_recipe(name: str | None) -> dict[str, str | float]:
    """The preset's default optimizer, lr and lr_dropout (TrainConfig keys); {} for None or an unknown name."""
    return dict(TRAIN_RECIPES.get(name or "", {}))


def recipe_text(recipe: dict[str, str | float]) -> str:
    """Short form for tables and help, e.g. "rmsprop lr 2e-04 lr-dropout 0.3"."""
    text = f"{recipe['optimizer']} lr {float(recipe['lr']):.0e}"
    return text + (f" lr-dropout {recipe['lr_dropout']}" if float(recipe["lr_dropout"]) < 1 else "")


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
    extra = {"dst_count": cfg.dst_count} if cfg.arch == "df" else {}  # one dst decoder per dst faceset
    return cls(cfg.resolution, cfg.ae_dims, cfg.e_dims, cfg.d_dims, cfg.d_mask_dims, cfg.opts, **extra)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
