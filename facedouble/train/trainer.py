"""The training loop: DF/LIAE on two facesets, resumable, DDP-ready, bf16-capable.

Run under `torchrun --nproc_per_node N` and it becomes data-parallel (gloo on CPU, NCCL on CUDA):
each rank samples its own shard, gradients are averaged, rank 0 writes checkpoints.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.distributed as dist

from facedouble.config import from_dict, to_dict
from facedouble.errors import FacedoubleError, InternalError, PolicyError
from facedouble.io.atomic import atomic_write_bytes, atomic_write_json
from facedouble.log import get_logger
from facedouble.nn import checkpoint as ck
from facedouble.nn.precision import use_bf16
from facedouble.train.data import AugmentConfig, BatchSource, FaceBank
from facedouble.train.losses import identity_loss, ssim, training_mask
from facedouble.train.losslog import LossLog
from facedouble.train.models import gemm_grad
from facedouble.train.models.blocks import code_sizes
from facedouble.train.models.discriminators import CodeDiscriminator, PatchDiscriminator, bce
from facedouble.train.models.presets import ModelConfig, build_model, count_parameters, preset
from facedouble.train.optim import make_optimizer, resolve_kernel

log = get_logger("facedouble.train")


@dataclasses.dataclass
class TrainConfig:
    """Training options (saved with each checkpoint; may change between sessions)."""

    batch_size: int = 8
    optimizer: str = "adabelief"  # adabelief (DFL's, default) | adam
    # AdaBelief step: compiled (one fused pass per tensor, 3-4x faster on CPU, 5-40 s to compile once) |
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
        from facedouble.train.optim import OPTIMIZER_KERNELS

        choices = {"optimizer": ("adabelief", "adam"), "optimizer_kernel": OPTIMIZER_KERNELS,
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


def check_consent(src_faceset: Path, workspace: Path | None) -> dict[str, Any]:
    """Consent gate: the src faceset must be bound to a consent record (facedouble.trust).

    Returns the record info stored in the model metadata. Fails closed: if the trust module cannot
    be imported (a broken or stripped install), training is refused, never run unbound.
    """
    try:
        from facedouble.trust.consent import require_consent
    except ImportError as exc:
        raise PolicyError(f"training refused: the consent check cannot run ({exc}); reinstall facedouble "
                          "with its trust module") from None
    record = require_consent(Path(src_faceset), workspace)  # raises PolicyError
    return {"name": record.name, "record_hash": record.record_hash}


def seal_consent(checkpoint: Path, consent: dict[str, Any], weights_sha256: str, workspace: Path | None) -> None:
    """Seal the saved checkpoint's consent with the workspace key (facedouble.trust.seal); fails closed."""
    try:
        from facedouble.trust.seal import write_seal
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


def _rng_state() -> dict[str, str]:
    return {"torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode()}


def _set_rng_state(state: dict[str, str]) -> None:
    raw = np.frombuffer(base64.b64decode(state["torch"]), np.uint8).copy()
    torch.set_rng_state(torch.from_numpy(raw))


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 over all parameters and buffers (to compare DDP ranks)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


def to_tensor(x: np.ndarray, device: torch.device, channels_last: bool) -> torch.Tensor:
    """NHWC float32 numpy -> NCHW tensor (channels-last strides for free when wanted)."""
    t = torch.from_numpy(x).permute(0, 3, 1, 2)
    t = t if channels_last else t.contiguous()
    return t.to(device, non_blocking=True)


@torch.inference_mode()
def reconstruction_ssim(model: torch.nn.Module, images: np.ndarray, resolution: int, side: str = "dst",
                        masks: np.ndarray | None = None, batch: int = 16) -> float:
    """Mean SSIM of side->side reconstructions of uint8 faces (N,H,W,3): a held-out quality figure.

    With `masks` (N,H,W uint8) both images are multiplied by the mask first, as in training, so the
    figure measures the face the model is trained on, not the background.
    """
    was_training = model.training
    model.eval()
    scores = []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(images[i:i + batch]).permute(0, 3, 1, 2).float() / 255
        m = torch.ones_like(x[:, :1]) if masks is None else \
            torch.from_numpy(masks[i:i + batch]).float()[:, None] / 255
        out = model(x, x)
        scores.append(ssim(out[f"{side}_rgb"].float() * m, x * m, max(3, int(resolution / 11.6))))
    model.train(was_training)
    return float(torch.cat(scores).mean())


def preview_grid(model: torch.nn.Module, batch: dict[str, np.ndarray], device: torch.device,
                 rows: int = 4) -> np.ndarray:
    """uint8 RGB grid: columns src, src->src, dst, dst->dst, dst->src."""
    with torch.inference_mode():
        src = torch.from_numpy(batch["src_target"][:rows]).permute(0, 3, 1, 2).to(device)
        dst = torch.from_numpy(batch["dst_target"][:rows]).permute(0, 3, 1, 2).to(device)
        out = model(src, dst)
        swap, _ = model.swap(dst)
    cols = [src, out["src_rgb"], dst, out["dst_rgb"], swap]
    cols = [c.float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() for c in cols]
    grid = np.concatenate([np.concatenate(list(c), axis=0) for c in cols], axis=1)
    return (grid * 255 + 0.5).astype(np.uint8)


class Trainer:
    """Owns model, optimizer, data and the loop. Use `run()`; construct via `Trainer.create`."""

    def __init__(self, model_dir: Path, model_cfg: ModelConfig, train_cfg: TrainConfig, src: Path, dst: Path,
                 consent: dict[str, Any] | None):
        self.model_dir, self.mcfg, self.cfg = Path(model_dir), model_cfg, train_cfg
        self.src_dir, self.dst_dir, self.consent = Path(src), Path(dst), consent
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        want_cuda = train_cfg.device == "cuda" or (train_cfg.device == "auto" and torch.cuda.is_available())
        if want_cuda and not torch.cuda.is_available():
            raise FacedoubleError("--device cuda requested but CUDA is not available")
        local = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = torch.device(f"cuda:{local}" if want_cuda else "cpu")
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if want_cuda else "gloo")
        if train_cfg.threads > 0:
            torch.set_num_threads(train_cfg.threads)
        self.bf16 = use_bf16(train_cfg.bf16, self.device)

        # rank 0 owns the folder; the lock is taken before anything is read, so a second trainer stops here
        self._lock = ck.ModelLock(self.model_dir) if self.rank == 0 else None
        try:
            self._load(model_cfg, train_cfg)
        except BaseException:
            if self._lock is not None:
                self._lock.release()
            raise

    def _load(self, model_cfg: ModelConfig, train_cfg: TrainConfig) -> None:
        """Model, optimizers (resumed from the newest checkpoint if any), losses and data."""
        resume = ck.has_checkpoint(self.model_dir)
        ckpt = ck.load_checkpoint(self.model_dir) if resume else None
        torch.manual_seed(train_cfg.seed)  # identical init on every rank (DDP also broadcasts rank 0's)
        self.model = build_model(model_cfg).to(self.device)
        if train_cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.gemm_grad_convs = 0
        if gemm_grad.use_gemm(train_cfg.conv_weight_grad, self.device, self.bf16):
            self.gemm_grad_convs = gemm_grad.convert(self.model)
        kernel = resolve_kernel(train_cfg.optimizer_kernel, self.device, train_cfg.optimizer, train_cfg.lr_dropout,
                                long_session=self._long_session(int(ckpt.state["iteration"]) if ckpt else 0))
        self.opt = make_optimizer(train_cfg.optimizer, self.model.parameters(), train_cfg.lr,
                                  train_cfg.lr_dropout, kernel)
        # Training-only modules (discriminators), each with its own optimizer of the same kind.
        self.aux: dict[str, torch.nn.Module] = {}
        if train_cfg.gan_power > 0:
            self.aux["gan"] = PatchDiscriminator(train_cfg.gan_dims)
        if train_cfg.true_face_power > 0:
            if model_cfg.arch != "df":
                raise FacedoubleError("true_face_power needs a DF model (as in DeepFaceLab)")
            low = code_sizes(model_cfg.resolution, model_cfg.opts)[0]
            self.aux["true_face"] = CodeDiscriminator(model_cfg.ae_dims, low if "t" in model_cfg.opts else low * 2)
        self.aux = {k: m.to(self.device) for k, m in self.aux.items()}
        self.aux_opts = {k: make_optimizer(train_cfg.optimizer, m.parameters(), train_cfg.lr, 1.0)
                         for k, m in self.aux.items()}
        self.iteration, history = 0, []
        self.identity_history: list[str] = []
        if ckpt is not None:
            self.model.load_state_dict(ckpt.weights)
            if ckpt.state["train"]["optimizer"] == train_cfg.optimizer:
                self.opt.load_state_dict(ckpt.optimizers["model"])
                for g in self.opt.param_groups:  # options changed on the command line win
                    g["lr"] = train_cfg.lr
                    if "lr_dropout" in g:
                        g["lr_dropout"] = train_cfg.lr_dropout
            else:
                log.warning("optimizer changed to %s: its state starts fresh", train_cfg.optimizer)
            for name, module in self.aux.items():  # a discriminator switched on later starts fresh
                if name in ckpt.aux_weights:
                    module.load_state_dict(ckpt.aux_weights[name])
                    if name in ckpt.optimizers and ckpt.state["train"]["optimizer"] == train_cfg.optimizer:
                        self.aux_opts[name].load_state_dict(ckpt.optimizers[name])
            self.iteration = int(ckpt.state["iteration"])
            history = ckpt.state["loss_history"]
            _set_rng_state(ckpt.state["rng"])
            if self.consent is None:
                self.consent = ckpt.state.get("consent")
            self.identity_history = identity_history(ckpt.state)
            self.pretrain_only = bool(ckpt.state.get("pretrain_only")) and train_cfg.pretrain
        else:
            self.pretrain_only = train_cfg.pretrain
        self.losses = LossLog(self.model_dir if self.rank == 0 else None, history, self.iteration)
        self.net: torch.nn.Module = self.model
        if self.world > 1:
            self.net = torch.nn.parallel.DistributedDataParallel(self.model)
        if train_cfg.compile:
            self.net = torch.compile(self.net)

        res, ft = model_cfg.resolution, model_cfg.face_type
        self.src_bank = FaceBank(self.src_dir, res, ft)
        self.dst_bank = self.src_bank if self.dst_dir == self.src_dir else FaceBank(self.dst_dir, res, ft)
        self.source = BatchSource(self.src_bank, self.dst_bank, train_cfg.batch_size, train_cfg.augment(),
                                  train_cfg.seed, self.rank, self.world, train_cfg.workers)

    def _long_session(self, start_iteration: int) -> bool:
        """Whether this session may run long enough to repay compiling the optimizer step."""
        iters_left = self.cfg.max_iters - start_iteration if self.cfg.max_iters > 0 else math.inf
        minutes = self.cfg.max_minutes if self.cfg.max_minutes > 0 else math.inf
        return iters_left >= 500 and minutes >= 20

    @classmethod
    def create(cls, model_dir: str | Path, src: str | Path, dst: str | Path | None, preset_name: str | None,
               model_overrides: dict[str, Any] | None = None, train_overrides: dict[str, Any] | None = None,
               workspace: str | Path | None = None) -> Trainer:
        """New model from a preset (+ overrides), or resume the one in `model_dir` (+ train overrides)."""
        model_dir = Path(model_dir)
        overrides = {k: v for k, v in (train_overrides or {}).items() if v is not None}
        if ck.has_checkpoint(model_dir):
            state = ck.load_state(model_dir)
            mcfg = from_dict(ModelConfig, state["model"])
            if model_overrides and any(v is not None for v in model_overrides.values()):
                raise FacedoubleError(f"{model_dir} already holds a model; its shape options cannot change")
            tcfg = from_dict(TrainConfig, {**state["train"], **overrides})
        else:
            base = preset(preset_name or "quick96")
            chosen = {k: v for k, v in (model_overrides or {}).items() if v is not None}
            mcfg = from_dict(ModelConfig, {**to_dict(base), **chosen})
            mcfg.validate()
            tcfg = from_dict(TrainConfig, overrides)
        if dst is None and not tcfg.pretrain:
            raise FacedoubleError("--dst is required (or use --pretrain)")
        dst = src if tcfg.pretrain else dst
        consent = None if tcfg.pretrain else check_consent(Path(src), Path(workspace) if workspace else None)
        if consent and ck.has_checkpoint(model_dir):
            check_identity_history(state, consent, model_dir)
        trainer = cls(model_dir, mcfg, tcfg, Path(src), Path(dst), consent)
        trainer.workspace = Path(workspace) if workspace else None  # its key seals the consent at each save
        return trainer

    # -- one step ---------------------------------------------------------------------------------
    def step(self, batch: dict[str, np.ndarray]) -> tuple[float, float]:
        """One optimisation step on a batch; returns (src loss, dst loss)."""
        cl, dev, res = self.cfg.channels_last, self.device, self.mcfg.resolution
        t = {k: to_tensor(v, dev, cl) for k, v in batch.items()}
        amp = torch.autocast(dev.type, dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()
        with amp:
            out = self.net(t["src_warped"], t["dst_warped"])
        losses = []
        for side in ("src", "dst"):
            em = t[f"{side}_eyes_mouth"] if self.cfg.eyes_mouth_prio else None
            losses.append(identity_loss(out[f"{side}_rgb"], out[f"{side}_mask"], t[f"{side}_target"],
                                        t[f"{side}_mask"], res, em, masked=self.cfg.masked_training).mean())
        loss = losses[0] + losses[1]
        if self.aux:
            loss = loss + self._adversarial_g_loss(out, t, amp)
        if not torch.isfinite(loss):
            raise InternalError(f"loss became {loss.item()} at iteration {self.iteration}; lower --lr")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.clipnorm > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clipnorm)
        self.opt.step()
        if self.aux:
            self._discriminator_step(out, t, amp)
        return float(losses[0].detach()), float(losses[1].detach())

    def _gan_pair(self, out: dict[str, torch.Tensor], t: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        m = training_mask(t["src_mask"], self.mcfg.resolution)
        return t["src_target"] * m, out["src_rgb"] * m

    def _adversarial_g_loss(self, out: dict[str, torch.Tensor], t: dict[str, torch.Tensor], amp) -> torch.Tensor:
        """Generator side: fool the patch discriminator (src->src) and the code discriminator (dst code)."""
        loss = torch.zeros((), device=self.device)
        with amp:
            if "gan" in self.aux:
                loss = loss + self.cfg.gan_power * bce(self.aux["gan"](self._gan_pair(out, t)[1]), True)
            if "true_face" in self.aux:
                loss = loss + self.cfg.true_face_power * bce(self.aux["true_face"](out["dst_code"]), True)
        return loss

    def _discriminator_step(self, out: dict[str, torch.Tensor], t: dict[str, torch.Tensor], amp) -> None:
        """Discriminator side, on detached generator outputs; grads averaged by hand under DDP."""
        loss = torch.zeros((), device=self.device)
        with amp:
            if "gan" in self.aux:
                real, fake = self._gan_pair(out, t)
                d = self.aux["gan"]
                loss = loss + bce(d(real), True) + bce(d(fake.detach()), False)
            if "true_face" in self.aux:
                d = self.aux["true_face"]
                loss = loss + 0.5 * (bce(d(out["src_code"].detach()), True) + bce(d(out["dst_code"].detach()), False))
        for o in self.aux_opts.values():
            o.zero_grad(set_to_none=True)
        loss.backward()
        for name, module in self.aux.items():
            if self.world > 1:
                for p in module.parameters():
                    if p.grad is not None:
                        dist.all_reduce(p.grad)
                        p.grad /= self.world
            self.aux_opts[name].step()

    # -- persistence -------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The JSON part of a checkpoint."""
        return {"model": to_dict(self.mcfg), "train": to_dict(self.cfg), "iteration": self.iteration,
                "rng": _rng_state(), "loss_history": self.losses.state_tail(), "consent": self.consent,
                "param_count": count_parameters(self.model), "world_size": self.world,
                # A model trained only in pretrain mode has a src decoder for an unconsented identity:
                # the swapper refuses it until it is trained on a consented src faceset.
                "pretrain_only": self.pretrain_only,
                # every consented identity that trained this model's src path (switching is refused)
                "identity_history": sorted(set(self.identity_history)
                                           | ({self.consent["name"]} if self.consent else set())),
                "src": str(self.src_dir), "dst": str(self.dst_dir)}

    def save(self) -> None:
        """Checkpoint (rank 0 only), loss.csv and a preview."""
        if self.rank != 0:
            return
        optimizers = {"model": self.opt.state_dict(), **{k: o.state_dict() for k, o in self.aux_opts.items()}}
        self.losses.flush()  # first: rows past a checkpoint that never got published are cut on resume
        ckpt = ck.save_checkpoint(self.model_dir, self.model.state_dict(), optimizers, self.state(),
                                  self.cfg.keep_last, aux={k: m.state_dict() for k, m in self.aux.items()})
        if self.consent:
            seal_consent(ckpt, self.consent, ck.checkpoint_dir(self.model_dir)[1][ck.WEIGHTS],
                         getattr(self, "workspace", None))
        self.write_preview()

    def write_preview(self) -> None:
        """preview.png: src, src->src, dst, dst->dst, dst->src for a fixed batch."""
        if self.rank != 0:
            return
        was = self.model.training
        self.model.eval()
        grid = preview_grid(self.model, self.source.make(0), self.device)
        self.model.train(was)
        ok, buf = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
        if ok:
            atomic_write_bytes(self.model_dir / "preview.png", buf.tobytes())

    def _should_stop(self, start: float) -> bool:
        stop = (self.cfg.max_iters > 0 and self.iteration >= self.cfg.max_iters) or \
               (self.cfg.max_minutes > 0 and time.monotonic() - start >= self.cfg.max_minutes * 60)
        if self.world > 1:  # rank 0 decides for all, so no rank waits forever in an all-reduce
            flag = torch.tensor([int(stop)], device=self.device)
            dist.broadcast(flag, 0)
            stop = bool(flag.item())
        return stop

    # -- the loop ----------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Train until a stop condition; save on exit, also on Ctrl-C. Returns a summary."""
        self.model.train()
        start = last_save = last_preview = last_print = time.monotonic()
        first_it, n_params = self.iteration, count_parameters(self.model)
        if self.rank == 0:
            log.info("model %s/%s %d px, %.2f M parameters, iteration %d, %d src / %d dst faces, world %d, %s, "
                     "%d convs with GEMM weight gradients, %s optimizer step",
                     self.mcfg.arch, self.mcfg.opts or "-", self.mcfg.resolution, n_params / 1e6,
                     self.iteration, len(self.src_bank), len(self.dst_bank), self.world,
                     "bf16 autocast" if self.bf16 else "fp32", self.gemm_grad_convs,
                     getattr(self.opt, "kernel", "torch's"))
        try:
            while not self._should_stop(start):
                ls, ld = self.step(self.source.get(self.iteration))
                self.iteration += 1
                self.losses.add(self.iteration, ls, ld)
                now = time.monotonic()
                if now - last_save >= self.cfg.save_every_min * 60:
                    self.save()
                    last_save = last_preview = now
                elif now - last_preview >= self.cfg.preview_every_min * 60:
                    self.write_preview()
                    last_preview = now
                if self.rank == 0 and (now - last_print >= 1.0):
                    last_print = now
                    rate = (self.iteration - first_it) * self.cfg.batch_size * self.world / (now - start)
                    nxt = self.cfg.save_every_min * 60 - (now - last_save)
                    due = f"{int(nxt // 60)}:{int(nxt % 60):02d}" if nxt < 86400 else "-"
                    sys.stderr.write(f"\r[{time.strftime('%H:%M:%S')}] iter {self.iteration}  "
                                     f"{rate:.1f} samples/s  src {ls:.4f}  dst {ld:.4f}  save in {due} ")
                    sys.stderr.flush()
        except KeyboardInterrupt:
            if self.rank == 0:
                sys.stderr.write("\n")
                log.info("interrupted at iteration %d: saving", self.iteration)
            try:
                self.save()
            finally:
                self.close()
            raise
        except BaseException:
            self.close()  # a failed save (disk full) or step: free the lock and the workers, keep the last good save
            raise
        if self.rank == 0:
            sys.stderr.write("\n")
        try:
            digests = self.rank_digests()
            if digests and len(set(digests)) != 1:
                log.error("DDP ranks diverged: %s", digests)
            self.save()
            if digests and self.rank == 0:  # record the check beside the checkpoint for `model info`
                atomic_write_json(self.model_dir / "ranks.json",
                                  {"iteration": self.iteration, "digests": digests})
        finally:
            self.close()
        elapsed = time.monotonic() - start
        done = self.iteration - first_it
        return {"iteration": self.iteration, "iterations": done, "seconds": elapsed,
                "samples_per_s": done * self.cfg.batch_size * self.world / max(elapsed, 1e-9),
                "loss": self.losses.last[1:] if self.losses.last else [math.nan, math.nan]}

    def rank_digests(self) -> list[str]:
        """Weights digest of every rank (gathered as raw bytes, no pickle); [] when not distributed."""
        if self.world <= 1:
            return []
        mine = torch.frombuffer(bytearray(bytes.fromhex(weights_digest(self.model))), dtype=torch.uint8)
        mine = mine.to(self.device)  # NCCL gathers device tensors only
        gathered = [torch.empty(32, dtype=torch.uint8, device=self.device) for _ in range(self.world)]
        dist.all_gather(gathered, mine)
        return [bytes(g.cpu().tolist()).hex() for g in gathered]

    def close(self) -> None:
        """Stop workers and free the model folder (the process group is left to the caller)."""
        self.source.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None  # close() may run twice (error paths); release once
