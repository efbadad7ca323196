"""Create/resume state: the consent gate and seal, identity history, RNG state, restoring a checkpoint."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facedouble.config import from_dict, to_dict
from facedouble.errors import FacedoubleError, PolicyError
from facedouble.log import get_logger
from facedouble.nn import checkpoint as ck
from facedouble.train.config import ModelConfig, TrainConfig
from facedouble.train.models.presets import preset, train_recipe

log = get_logger("facedouble.train")


def check_consent(src_faceset: Path, workspace: Path | None) -> dict[str, Any]:
    """Consent gate: the src faceset must be bound to a consent record (facedouble.trust).

    Returns the record info stored in the model metadata. Fails closed: if the trust module cannot
    be imported (a broken or stripped install), training is refused, never run unbound.
    """
    try:
        from facedouble.consent.records import require_consent
    except ImportError as exc:
        raise PolicyError(f"training refused: the consent check cannot run ({exc}); reinstall facedouble "
                          "with its trust module") from None
    record = require_consent(Path(src_faceset), workspace)  # raises PolicyError
    return {"name": record.name, "record_hash": record.record_hash}


def seal_consent(checkpoint: Path, consent: dict[str, Any], weights_sha256: str, workspace: Path | None) -> None:
    """Seal a checkpoint folder's consent with the workspace key (facedouble.consent.seal) before the folder is
    published; fails closed."""
    try:
        from facedouble.consent.seal import write_seal
    except ImportError as exc:
        raise PolicyError(f"training refused: the consent seal cannot be written ({exc}); reinstall facedouble "
                          "with its trust module") from None
    write_seal(checkpoint, consent, weights_sha256, workspace)


def identity_history(state: dict[str, Any]) -> list[str]:
    """Names of the consented identities that trained a checkpoint's src path."""
    names = [str(n) for n in state.get("identity_history") or [] if isinstance(n, str)]
    consent = state.get("consent")
    if isinstance(consent, dict) and consent.get("name"):
        names.append(str(consent["name"]))
    return sorted(set(names))


def check_identity_history(state: dict[str, Any], consent: dict[str, Any], model_dir: Path) -> None:
    """PolicyError when the model's src path was trained on another identity than `consent`'s."""
    others = [name for name in identity_history(state) if name != consent.get("name")]
    if others:
        raise PolicyError(f"training refused: {model_dir} was trained on identity {others[0]!r}; switching it to "
                          f"{consent.get('name')!r} would carry one person's training under another's consent "
                          "(start a new model)")


def rng_state() -> dict[str, str]:
    """torch's CPU RNG as base64 (JSON-safe, no pickle), so a resumed session draws the same numbers."""
    return {"torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode()}


def set_rng_state(state: dict[str, str]) -> None:
    """Restore the RNG saved by `rng_state`."""
    raw = np.frombuffer(base64.b64decode(state["torch"]), np.uint8).copy()
    torch.set_rng_state(torch.from_numpy(raw))


def resolve_configs(model_dir: Path, preset_name: str | None, model_overrides: dict[str, Any] | None,
                    train_overrides: dict[str, Any] | None) -> tuple[ModelConfig, TrainConfig, dict[str, Any] | None]:
    """(model config, train config, saved state or None): a resumed model's configs (+ train overrides), or a
    new model's from a preset (+ overrides)."""
    overrides = {k: v for k, v in (train_overrides or {}).items() if v is not None}
    if ck.has_checkpoint(model_dir):
        state = ck.load_state(model_dir)
        mcfg = from_dict(ModelConfig, state["model"])
        # the same command line again resumes (issue 16's kill drills); only a different shape is refused
        changed = sorted(k for k, v in (model_overrides or {}).items()
                         if v is not None and to_dict(mcfg).get(k, v) != v)
        if changed:
            raise FacedoubleError(f"{model_dir} already holds a model; its shape options cannot change "
                                  f"({', '.join(changed)})")
        tcfg = from_dict(TrainConfig, {**state["train"], **overrides})
        return mcfg, tcfg, state
    base = preset(preset_name or "quick96")
    chosen = {k: v for k, v in (model_overrides or {}).items() if v is not None}
    mcfg = from_dict(ModelConfig, {**to_dict(base), **chosen})
    mcfg.validate()
    # optimizer, lr and lr_dropout start from the preset's DFL recipe; given settings win
    return mcfg, from_dict(TrainConfig, {**train_recipe(preset_name or "quick96"), **overrides}), None


def restore(ckpt: ck.Checkpoint, model: torch.nn.Module, opt: torch.optim.Optimizer, aux: dict[str, torch.nn.Module],
            aux_opts: dict[str, torch.optim.Optimizer], train_cfg: TrainConfig) -> None:
    """Load a checkpoint's weights and optimizer states into a freshly built model, discriminators and optimizers."""
    model.load_state_dict(ckpt.weights)
    if ckpt.state["train"]["optimizer"] == train_cfg.optimizer:
        opt.load_state_dict(ckpt.optimizers["model"])
        for g in opt.param_groups:  # options changed on the command line win
            g["lr"] = train_cfg.lr
            if "lr_dropout" in g:
                g["lr_dropout"] = train_cfg.lr_dropout
    else:
        log.warning("optimizer changed to %s: its state starts fresh", train_cfg.optimizer)
    for name, module in aux.items():  # a discriminator switched on later starts fresh
        if name in ckpt.aux_weights:
            module.load_state_dict(ckpt.aux_weights[name])
            if name in ckpt.optimizers and ckpt.state["train"]["optimizer"] == train_cfg.optimizer:
                aux_opts[name].load_state_dict(ckpt.optimizers[name])
