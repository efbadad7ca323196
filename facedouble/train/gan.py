"""The adversarial parts of training: the patch and code discriminators, their generator loss and their step."""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch

from facedouble.errors import FacedoubleError
from facedouble.train.config import ModelConfig, TrainConfig
from facedouble.train.ddp import average_grads
from facedouble.train.losses import training_mask
from facedouble.train.models.blocks import code_sizes
from facedouble.train.models.discriminators import CodeDiscriminator, PatchDiscriminator, bce


def build_discriminators(model_cfg: ModelConfig, train_cfg: TrainConfig) -> dict[str, torch.nn.Module]:
    """The training-only modules the config switches on: "gan" (patch-GAN) and/or "true_face" (code, DF only)."""
    aux: dict[str, torch.nn.Module] = {}
    if train_cfg.gan_power > 0:
        aux["gan"] = PatchDiscriminator(train_cfg.gan_dims)
    if train_cfg.true_face_power > 0:
        if model_cfg.arch != "df":
            raise FacedoubleError("true_face_power needs a DF model (as in DeepFaceLab)")
        low = code_sizes(model_cfg.resolution, model_cfg.opts)[0]
        aux["true_face"] = CodeDiscriminator(model_cfg.ae_dims, low if "t" in model_cfg.opts else low * 2)
    return aux


def gan_pair(out: dict[str, torch.Tensor], t: dict[str, torch.Tensor], resolution: int) -> tuple[torch.Tensor, ...]:
    """(real, fake) src faces under the training mask, as the patch discriminator sees them."""
    m = training_mask(t["src_mask"], resolution)
    return t["src_target"] * m, out["src_rgb"] * m


def adversarial_g_loss(aux: dict[str, torch.nn.Module], cfg: TrainConfig, resolution: int,
                       out: dict[str, torch.Tensor], t: dict[str, torch.Tensor], amp: AbstractContextManager,
                       device: torch.device) -> torch.Tensor:
    """Generator side: fool the patch discriminator (src->src) and the code discriminator (dst code)."""
    loss = torch.zeros((), device=device)
    with amp:
        if "gan" in aux:
            loss = loss + cfg.gan_power * bce(aux["gan"](gan_pair(out, t, resolution)[1]), True)
        if "true_face" in aux:
            loss = loss + cfg.true_face_power * bce(aux["true_face"](out["dst_code"]), True)
    return loss


def discriminator_step(aux: dict[str, torch.nn.Module], aux_opts: dict[str, torch.optim.Optimizer], resolution: int,
                       out: dict[str, torch.Tensor], t: dict[str, torch.Tensor], amp: AbstractContextManager,
                       device: torch.device, world: int) -> None:
    """Discriminator side, on detached generator outputs; grads averaged by hand under DDP."""
    loss = torch.zeros((), device=device)
    with amp:
        if "gan" in aux:
            real, fake = gan_pair(out, t, resolution)
            d = aux["gan"]
            loss = loss + bce(d(real), True) + bce(d(fake.detach()), False)
        if "true_face" in aux:
            d = aux["true_face"]
            loss = loss + 0.5 * (bce(d(out["src_code"].detach()), True) + bce(d(out["dst_code"].detach()), False))
    for o in aux_opts.values():
        o.zero_grad(set_to_none=True)
    loss.backward()
    for name, module in aux.items():
        average_grads(module, world)
        aux_opts[name].step()
