"""The training loop: DF/LIAE on two facesets, resumable, DDP-ready, bf16-capable.

Run under `torchrun --nproc_per_node N` and it becomes data-parallel (gloo on CPU, NCCL on CUDA):
each rank samples its own shard, gradients are averaged, rank 0 writes checkpoints.

The Trainer orchestrates; its parts live beside it: config.py (TrainConfig), device.py (device, threads,
precision), ddp.py (process group, DDP wrapper, rank digests), resume.py (consent, identity history, RNG,
restoring a checkpoint), gan.py (discriminators), preview.py (preview grid, reconstruction SSIM).
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from facedouble.config import to_dict
from facedouble.errors import FacedoubleError, InternalError
from facedouble.io.atomic import atomic_write_bytes, atomic_write_json
from facedouble.log import get_logger
from facedouble.nn import checkpoint as ck
from facedouble.train import ddp, gan
from facedouble.train.config import ModelConfig, TrainConfig
from facedouble.train.data import BatchSource, FaceBank, dst_split
from facedouble.train.ddp import weights_digest
from facedouble.train.device import choose_device, set_threads, use_bf16
from facedouble.train.losses import identity_loss
from facedouble.train.losslog import LossLog
from facedouble.train.models import gemm_grad
from facedouble.train.models.presets import build_model, count_parameters
from facedouble.train.optim import make_optimizer, resolve_kernel
from facedouble.train.preview import preview_grid, reconstruction_ssim
from facedouble.train.resume import (
    check_consent,
    check_identity_history,
    identity_history,
    resolve_configs,
    restore,
    rng_state,
    seal_consent,
    set_rng_state,
)

# Importers use these names from here (the Trainer's API before its parts moved to their own modules).
__all__ = ["ModelConfig", "TrainConfig", "Trainer", "check_consent", "check_identity_history", "identity_history",
           "preview_grid", "reconstruction_ssim", "seal_consent", "to_tensor", "weights_digest"]

log = get_logger("facedouble.train")


def to_tensor(x: np.ndarray, device: torch.device, channels_last: bool) -> torch.Tensor:
    """NHWC float32 numpy -> NCHW tensor (channels-last strides for free when wanted)."""
    t = torch.from_numpy(x).permute(0, 3, 1, 2)
    t = t if channels_last else t.contiguous()
    return t.to(device, non_blocking=True)


def dst_list(dst: str | Path | list[str | Path] | tuple[str | Path, ...] | None) -> list[Path]:
    """The dst facesets of a train call as a list (None -> []); the same faceset twice -> one-line error."""
    dsts = [] if dst is None else [Path(d) for d in dst] if isinstance(dst, (list, tuple)) else [Path(dst)]
    seen: set[Path] = set()
    for d in dsts:
        key = d.resolve()
        if key in seen:
            raise FacedoubleError(f"--dst {d} is given twice: each --dst is another faceset with its own decoder")
        seen.add(key)
    return dsts


def _with_dst_count(model_dir: Path, model_overrides: dict[str, Any] | None, count: int) -> dict[str, Any] | None:
    """Model overrides with dst_count set from the number of --dst; a resumed model must get its own number."""
    given = (model_overrides or {}).get("dst_count")
    if count == 0:  # --pretrain (one faceset as both identities), or no --dst (refused by the caller)
        return model_overrides
    if given is not None and int(given) != count:
        raise FacedoubleError(f"dst_count {given} does not match the {count} --dst faceset(s) given: the number "
                              "of --dst sets it")
    if ck.has_checkpoint(model_dir):
        saved = int(ck.load_state(model_dir)["model"].get("dst_count", 1))
        if saved != count:
            raise FacedoubleError(f"{model_dir} was trained with {saved} --dst faceset(s), got {count}: resume with "
                                  f"the same {saved} (or train a new --model)")
        return model_overrides
    return {**(model_overrides or {}), "dst_count": count}


class Trainer:
    """Owns model, optimizer, data and the loop. Use `run()`; construct via `Trainer.create`."""

    def __init__(self, model_dir: Path, model_cfg: ModelConfig, train_cfg: TrainConfig, src: Path,
                 dst: Path | list[Path], consent: dict[str, Any] | None):
        self.model_dir, self.mcfg, self.cfg = Path(model_dir), model_cfg, train_cfg
        # several dst facesets: one decoder each (DF), the first is the target the swap is judged on
        self.dst_dirs = [Path(d) for d in dst] if isinstance(dst, (list, tuple)) else [Path(dst)]
        self.src_dir, self.dst_dir, self.consent = Path(src), self.dst_dirs[0], consent
        self.world, self.rank = ddp.world_and_rank()
        self.device = choose_device(train_cfg)
        ddp.init_process_group(self.world, self.device.type == "cuda")
        set_threads(train_cfg)
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
        kernel = resolve_kernel(train_cfg.optimizer_kernel, self.device, train_cfg.optimizer,
                                long_session=self._long_session(int(ckpt.state["iteration"]) if ckpt else 0))
        self.opt = make_optimizer(train_cfg.optimizer, self.model.parameters(), train_cfg.lr,
                                  train_cfg.lr_dropout, kernel)
        # Training-only modules (discriminators), each with its own optimizer of the same kind.
        self.aux = {k: m.to(self.device) for k, m in gan.build_discriminators(model_cfg, train_cfg).items()}
        self.aux_opts = {k: make_optimizer(train_cfg.optimizer, m.parameters(), train_cfg.lr, 1.0)
                         for k, m in self.aux.items()}
        self.iteration, history = 0, []
        self.identity_history: list[str] = []
        if ckpt is not None:
            restore(ckpt, self.model, self.opt, self.aux, self.aux_opts, train_cfg)
            self.iteration = int(ckpt.state["iteration"])
            history = ckpt.state["loss_history"]
            set_rng_state(ckpt.state["rng"])
            if self.consent is None:
                self.consent = ckpt.state.get("consent")
            self.identity_history = identity_history(ckpt.state)
            self.pretrain_only = bool(ckpt.state.get("pretrain_only")) and train_cfg.pretrain
        else:
            self.pretrain_only = train_cfg.pretrain
        self.losses = LossLog(self.model_dir if self.rank == 0 else None, history, self.iteration)
        self.net: torch.nn.Module = ddp.wrap(self.model, self.world)
        if train_cfg.compile:
            self.net = torch.compile(self.net)

        res, ft = model_cfg.resolution, model_cfg.face_type
        self.src_bank = FaceBank(self.src_dir, res, ft)
        self.dst_banks = [self.src_bank if d == self.src_dir else FaceBank(d, res, ft) for d in self.dst_dirs]
        self.dst_bank = self.dst_banks[0]
        self.source = BatchSource(self.src_bank, self.dst_banks, train_cfg.batch_size, train_cfg.augment(),
                                  train_cfg.seed, self.rank, self.world, train_cfg.workers)
        # how many dst rows of each batch go to each dst decoder (None: one dst set, the model's old call)
        self.dst_split = self.source.split if len(self.dst_banks) > 1 else None

    def _long_session(self, start_iteration: int) -> bool:
        """Whether this session may run long enough to repay compiling the optimizer step."""
        iters_left = self.cfg.max_iters - start_iteration if self.cfg.max_iters > 0 else math.inf
        minutes = self.cfg.max_minutes if self.cfg.max_minutes > 0 else math.inf
        return iters_left >= 500 and minutes >= 20

    @classmethod
    def create(cls, model_dir: str | Path, src: str | Path, dst: str | Path | list[str | Path] | None,
               preset_name: str | None, model_overrides: dict[str, Any] | None = None,
               train_overrides: dict[str, Any] | None = None, workspace: str | Path | None = None) -> Trainer:
        """New model from a preset (+ overrides), or resume the one in `model_dir` (+ train overrides).

        `dst`: one dst faceset, or a list of them (a DF model then gets one decoder per dst faceset; the first
        is the target). A model resumes only with as many dst facesets as it was made with."""
        model_dir = Path(model_dir)
        dsts = dst_list(dst)
        model_overrides = _with_dst_count(model_dir, model_overrides, len(dsts))
        mcfg, tcfg, state = resolve_configs(model_dir, preset_name, model_overrides, train_overrides)
        if not dsts and not tcfg.pretrain:
            raise FacedoubleError("--dst is required (or use --pretrain)")
        if tcfg.pretrain and len(dsts) > 1:
            raise FacedoubleError("--pretrain trains on the --src faceset alone: several --dst do not apply")
        if tcfg.pretrain and mcfg.dst_count > 1:
            raise FacedoubleError(f"--pretrain trains on one faceset, but {model_dir} has {mcfg.dst_count} "
                                  "dst decoders")
        if len(dsts) > 1:
            dst_split(tcfg.batch_size, len(dsts))  # every dst set needs a sample per iteration: refuse before loading
        dst = [Path(src)] if tcfg.pretrain else dsts
        if tcfg.pretrain:  # no consent asked, so the faceset must not be one person (facedouble.train.pretrain)
            from facedouble.train.pretrain import check_pretrain_faceset

            check_pretrain_faceset(src)
        consent = None if tcfg.pretrain else check_consent(Path(src), Path(workspace) if workspace else None)
        if consent and state is not None:
            check_identity_history(state, consent, model_dir)
        trainer = cls(model_dir, mcfg, tcfg, Path(src), dst, consent)
        trainer.workspace = Path(workspace) if workspace else None  # its key seals the consent at each save
        return trainer

    # -- one step ---------------------------------------------------------------------------------
    def step(self, batch: dict[str, np.ndarray]) -> tuple[float, float]:
        """One optimisation step on a batch; returns (src loss, dst loss)."""
        cl, dev, res = self.cfg.channels_last, self.device, self.mcfg.resolution
        t = {k: to_tensor(v, dev, cl) for k, v in batch.items()}
        amp = torch.autocast(dev.type, dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()
        with amp:
            if self.dst_split is None:
                out = self.net(t["src_warped"], t["dst_warped"])
            else:  # each dst set's rows through its own decoder; the dst loss is the mean over all of them
                out = self.net(t["src_warped"], t["dst_warped"], dst_split=self.dst_split)
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

    def _adversarial_g_loss(self, out: dict[str, torch.Tensor], t: dict[str, torch.Tensor], amp) -> torch.Tensor:
        return gan.adversarial_g_loss(self.aux, self.cfg, self.mcfg.resolution, out, t, amp, self.device)

    def _discriminator_step(self, out: dict[str, torch.Tensor], t: dict[str, torch.Tensor], amp) -> None:
        gan.discriminator_step(self.aux, self.aux_opts, self.mcfg.resolution, out, t, amp, self.device, self.world)

    # -- persistence -------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The JSON part of a checkpoint."""
        return {"model": to_dict(self.mcfg), "train": to_dict(self.cfg), "iteration": self.iteration,
                "rng": rng_state(), "loss_history": self.losses.state_tail(), "consent": self.consent,
                "param_count": count_parameters(self.model), "world_size": self.world,
                # A model trained only in pretrain mode has a src decoder for an unconsented identity:
                # the swapper refuses it until it is trained on a consented src faceset.
                "pretrain_only": self.pretrain_only,
                # every consented identity that trained this model's src path (switching is refused)
                "identity_history": sorted(set(self.identity_history)
                                           | ({self.consent["name"]} if self.consent else set())),
                "src": str(self.src_dir), "dst": str(self.dst_dir), "dsts": [str(d) for d in self.dst_dirs]}

    def save(self) -> None:
        """Checkpoint (rank 0 only), loss.csv and a preview."""
        if self.rank != 0:
            return
        optimizers = {"model": self.opt.state_dict(), **{k: o.state_dict() for k, o in self.aux_opts.items()}}
        self.losses.flush()  # first: rows past a checkpoint that never got published are cut on resume
        consent, workspace = self.consent, getattr(self, "workspace", None)
        # the seal goes into the checkpoint folder before latest.json publishes it: a kill -9 at any point
        # leaves either the previous sealed checkpoint or this one, sealed
        seal = (lambda folder, weights_sha256: seal_consent(folder, consent, weights_sha256, workspace)) \
            if consent else None
        ck.save_checkpoint(self.model_dir, self.model.state_dict(), optimizers, self.state(), self.cfg.keep_last,
                           aux={k: m.state_dict() for k, m in self.aux.items()}, before_publish=seal)
        self.write_preview()

    def write_preview(self) -> None:
        """preview.png: src, src->src, dst, dst->dst, dst->src for a fixed batch."""
        if self.rank != 0:
            return
        was = self.model.training
        self.model.eval()
        grid = preview_grid(self.model, self.source.make(0, first_dst_only=True), self.device)
        self.model.train(was)
        ok, buf = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
        if ok:
            atomic_write_bytes(self.model_dir / "preview.png", buf.tobytes())

    def _should_stop(self, start: float) -> bool:
        stop = (self.cfg.max_iters > 0 and self.iteration >= self.cfg.max_iters) or \
               (self.cfg.max_minutes > 0 and time.monotonic() - start >= self.cfg.max_minutes * 60)
        return ddp.agree(stop, self.world, self.device)  # rank 0 decides for all

    # -- the loop ----------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Train until a stop condition; save on exit, also on Ctrl-C. Returns a summary."""
        self.model.train()
        start = last_save = last_preview = last_print = time.monotonic()
        first_it, n_params = self.iteration, count_parameters(self.model)
        if self.rank == 0:
            log.info("model %s/%s %d px, %.2f M parameters, iteration %d, %d src / %s dst faces, world %d, %s, "
                     "%d convs with GEMM weight gradients, %s optimizer step",
                     self.mcfg.arch, self.mcfg.opts or "-", self.mcfg.resolution, n_params / 1e6,
                     self.iteration, len(self.src_bank), "+".join(str(len(b)) for b in self.dst_banks), self.world,
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
        return ddp.rank_digests(self.model, self.world, self.device)

    def close(self) -> None:
        """Stop workers and free the model folder (the process group is left to the caller)."""
        self.source.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None  # close() may run twice (error paths); release once
