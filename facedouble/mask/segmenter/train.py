"""`facedouble mask train`: train (or resume, or fine-tune) a segmenter on the labelled faces of facesets.

The model folder has the layout of a face model (facedouble.nn.checkpoint): checkpoints of
safetensors weights + optimizer state + state.json published by latest.json, so resume is exact
(batches are a pure function of seed and iteration; Adam moments, BatchNorm statistics and the
iteration are restored), kill -9 keeps the previous checkpoint, and preview.png shows labels against
predictions. bf16 autocast where the hardware does bf16 natively (AVX-512 BF16 / AMX, CUDA).
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.nn import functional as tnf

from facedouble.errors import FacedoubleError, InputError
from facedouble.faceset import Faceset
from facedouble.faceset.labels import FaceLabels
from facedouble.io.atomic import atomic_write_bytes
from facedouble.log import get_logger
from facedouble.mask.labels import label_mask
from facedouble.mask.segmenter.augment import Occluder, SegAugment, make_batch, occluders_from
from facedouble.mask.segmenter.model import PRIORS, Segmenter, SegmenterConfig, check_weights, widen_input
from facedouble.nn.checkpoint import ModelLock, has_checkpoint, load_checkpoint, save_checkpoint
from facedouble.nn.precision import use_bf16
from facedouble.progress import Progress, ProgressCallback, report

log = get_logger("facedouble.mask")
KIND = "facedouble.segmenter"


@dataclasses.dataclass
class SegTrainConfig:
    """Training options (CLI flags of the same names)."""

    batch_size: int = 8
    lr: float = 1e-3  # peak; with max_iters set it follows a cosine down to lr/20 at max_iters
    seed: int = 0
    max_iters: int | None = None  # stop when the iteration count reaches this total
    max_minutes: float | None = None  # stop after this many minutes in this session
    lr_iters: int | None = None  # horizon of the cosine learning-rate decay (default: max_iters)
    session_iters: int | None = None  # stop after this many iterations in this session (as Ctrl-C would)
    save_every_min: float = 10.0
    preview_every_min: float = 5.0
    bf16: bool | None = None  # None = where native
    threads: int | None = None
    workers: int = 1  # batch-preparing threads (OpenCV releases the GIL)
    tone: float = 0.0  # share of samples with a strong tone change (augment.SegAugment.tone)
    shade: float = 0.0  # share of samples with a synthetic beard or shadow that stays face (SegAugment.shade)


class LabelledFaces:
    """The labelled faces of some facesets at the segmenter resolution: images, masks and occluder cut-outs."""

    def __init__(self, folders: list[Path], resolution: int, names: set[str] | None = None):
        from facedouble.mask.segmenter.outline import meta_outline

        imgs, masks, incs, excs, outlines, self.paths = [], [], [], [], [], []
        for folder in folders:
            fs = Faceset(folder)
            n_before = len(imgs)
            for path, meta in fs.metas():
                if meta.labels is None or (names is not None and path.name not in names):
                    continue
                rgb, _ = fs.load(path)
                s = resolution / meta.size
                if rgb.shape[0] != resolution:
                    rgb = cv2.resize(rgb, (resolution, resolution),
                                     interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
                lab = FaceLabels([q * s for q in meta.labels.include], [q * s for q in meta.labels.exclude])
                imgs.append(rgb)
                masks.append((label_mask(lab, resolution) * 255).astype(np.uint8))
                incs.append(label_mask(FaceLabels(lab.include, []), resolution) > 0)
                excs.append(label_mask(FaceLabels(lab.exclude, []), resolution) > 0)
                outlines.append(meta_outline(meta, resolution))  # what an outline segmenter is given
                self.paths.append(path)
            if len(imgs) == n_before:
                raise InputError(f"faceset {folder} has no labelled faces (draw them in the studio or import them "
                                 "with `facedouble mask label import`)")
        self.images = np.stack(imgs)
        self.masks = np.stack(masks)
        self.outlines = np.stack(outlines)
        self.occluders: list[Occluder] = occluders_from(self.images, np.stack(incs), self.masks, np.stack(excs))

    def __len__(self) -> int:
        return len(self.images)


def seg_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE + soft Dice (the Dice term keeps small occluders from being drowned by the big face area)."""
    logits = logits.float()
    bce = tnf.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits)
    inter = (p * target).sum((1, 2, 3))
    dice = 1 - (2 * inter + 1) / (p.sum((1, 2, 3)) + target.sum((1, 2, 3)) + 1)
    return bce + dice.mean()


def preview_image(model: Segmenter, x: np.ndarray, y: np.ndarray, bf16: bool) -> np.ndarray:
    """Rows of (face, label, prediction) overlays, RGB uint8: green = face-visible, red = excluded."""
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        pred = torch.sigmoid(model(torch.from_numpy(x)).float()).numpy()
    rows = []
    for img, lab, pr in zip(x[:, :3].transpose(0, 2, 3, 1), y[:, 0], pred[:, 0], strict=True):
        def tint(m: np.ndarray, base: np.ndarray = img) -> np.ndarray:
            over = np.stack([1 - m, m, np.zeros_like(m)], -1)
            return base * 0.55 + over * 0.45

        rows.append(np.hstack([img, tint(lab), tint(pr)]))
    return (np.clip(np.vstack(rows), 0, 1) * 255).astype(np.uint8)


class SegTrainer:
    """Build or resume a segmenter in `model_dir` and train it on the labelled faces of `facesets`."""

    def __init__(self, model_dir: str | Path, facesets: list[str | Path], cfg: SegTrainConfig,
                 resolution: int | None = None, init: str | Path | None = None,
                 progress: ProgressCallback | None = None, prior: str | None = None):
        from facedouble.mask.segmenter.apply import load_segmenter

        self.model_dir, self.cfg, self.progress = Path(model_dir), cfg, progress
        if not facesets:
            raise FacedoubleError("mask train needs at least one --faceset with labelled faces")
        if cfg.batch_size < 1 or cfg.lr <= 0:
            raise FacedoubleError("--batch-size must be >= 1 and --lr > 0")
        if not (0.0 <= cfg.tone <= 1.0 and 0.0 <= cfg.shade <= 1.0):
            raise FacedoubleError("--tone and --shade are shares of the samples, 0..1")
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.lock = ModelLock(self.model_dir)
        try:
            self._setup(facesets, resolution, init, load_segmenter, prior)
        except BaseException:
            self.lock.release()
            raise

    def _setup(self, facesets: list[str | Path], resolution: int | None, init: str | Path | None,
               load_segmenter: Any, prior: str | None) -> None:
        cfg = self.cfg
        ckpt = None
        if prior is not None and prior not in PRIORS:
            raise InputError(f"--prior {prior!r}: choose {' or '.join(PRIORS)}")
        if has_checkpoint(self.model_dir):
            ckpt = load_checkpoint(self.model_dir)
            if ckpt.state.get("kind") != KIND:
                raise InputError(f"{self.model_dir} holds a face model, not a mask segmenter")
            self.mcfg = SegmenterConfig.from_dict(ckpt.state.get("config"))
            if resolution is not None and resolution != self.mcfg.resolution:
                raise InputError(f"mask model {self.model_dir} is {self.mcfg.resolution} px, not {resolution} px "
                                 "(train a new --model folder for another resolution)")
            if prior is not None and prior != self.mcfg.prior:
                raise InputError(f"mask model {self.model_dir} takes prior {self.mcfg.prior}, not {prior} (start a "
                                 "new --model folder, e.g. with --from this one)")
            self.seed = int(ckpt.state.get("seed", cfg.seed))
        elif init is not None:
            base, self.mcfg = load_segmenter(init)
            if resolution is not None and resolution != self.mcfg.resolution:
                raise InputError(f"mask model {init} is {self.mcfg.resolution} px, not {resolution} px")
            if prior is not None and prior != self.mcfg.prior:
                if prior == "none":
                    raise InputError(f"mask model {init} takes the face outline; it cannot be narrowed to RGB only")
                self.mcfg = dataclasses.replace(self.mcfg, prior=prior)  # widened below (widen_input)
            self.seed = cfg.seed
        else:
            self.mcfg = SegmenterConfig(resolution=resolution or 256, prior=prior or "none")
            self.seed = cfg.seed
        self.bf16 = use_bf16(cfg.bf16)
        self.data = LabelledFaces([Path(f) for f in facesets], self.mcfg.resolution)
        torch.manual_seed(self.seed)  # initial weights of a new model
        self.model = Segmenter(self.mcfg).to(memory_format=torch.channels_last)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.iteration = 0
        if ckpt is not None:
            check_weights(self.model, ckpt.weights, str(self.model_dir))
            self.model.load_state_dict(ckpt.weights)
            self.opt.load_state_dict(ckpt.optimizers["adam"])
            self.iteration = int(ckpt.state["iteration"])
        elif init is not None:
            start = widen_input(self.model, base.state_dict())
            check_weights(self.model, start, str(init))
            self.model.load_state_dict(start)
        self.aug = SegAugment(tone=cfg.tone, shade=cfg.shade)
        self.outlines = self.data.outlines if self.mcfg.prior == "outline" else None
        self.pool = cf.ThreadPoolExecutor(cfg.workers) if cfg.workers > 0 else None
        self.pending: dict[int, cf.Future] = {}

    def batch(self, iteration: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch `iteration` (prefetching the next ones on the worker threads)."""
        def make(it: int) -> tuple[np.ndarray, np.ndarray]:
            return make_batch(self.data.images, self.data.masks, self.data.occluders, self.aug, self.seed, it,
                              self.cfg.batch_size, self.outlines)

        if self.pool is None:
            return make(iteration)
        for it in range(iteration, iteration + 3):
            if it not in self.pending:
                self.pending[it] = self.pool.submit(make, it)
        return self.pending.pop(iteration).result()

    def lr_at(self, iteration: int) -> float:
        """Learning rate of `iteration`: cosine from lr to lr/20 over lr_iters or max_iters (else constant)."""
        total = self.cfg.lr_iters or self.cfg.max_iters
        if not total:
            return self.cfg.lr
        t = min(iteration / total, 1.0)
        return self.cfg.lr * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * t)))

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        """One optimizer step; returns the loss."""
        self.model.train()
        for group in self.opt.param_groups:
            group["lr"] = self.lr_at(self.iteration)
        xt = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.model(xt)
        loss = seg_loss(logits, torch.from_numpy(y))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return float(loss.detach())

    def save(self) -> None:
        """Checkpoint + preview."""
        state = {"kind": KIND, "config": self.mcfg.to_dict(), "iteration": self.iteration, "seed": self.seed,
                 "batch_size": self.cfg.batch_size, "lr": self.cfg.lr, "faces": len(self.data),
                 "occluders": len(self.data.occluders), "bf16": self.bf16, "tone": self.cfg.tone,
                 "shade": self.cfg.shade}
        save_checkpoint(self.model_dir, self.model.state_dict(), {"adam": self.opt.state_dict()}, state)
        self.write_preview()

    def write_preview(self) -> None:
        """preview.png: face, label, prediction for a fixed batch of 4 augmented samples."""
        x, y = make_batch(self.data.images, self.data.masks, self.data.occluders, self.aug, self.seed, -1 % 2**32,
                          4, self.outlines)
        self.model.eval()
        grid = preview_image(self.model, x, y, self.bf16)
        ok, buf = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
        if ok:
            atomic_write_bytes(self.model_dir / "preview.png", buf.tobytes())

    def run(self) -> dict[str, Any]:
        """Train until --max-iters / --max-minutes (or Ctrl-C, which saves first); returns a summary."""
        cfg = self.cfg
        start = last_save = last_preview = time.monotonic()
        first = self.iteration
        log.info("segmenter %d px%s, %d labelled faces, %d occluder cut-outs, iteration %d, %s",
                 self.mcfg.resolution, " with the face outline" if self.outlines is not None else "",
                 len(self.data), len(self.data.occluders), self.iteration,
                 "bf16 autocast" if self.bf16 else "fp32")
        loss = float("nan")
        try:
            while True:
                if cfg.max_iters is not None and self.iteration >= cfg.max_iters:
                    break
                if cfg.max_minutes is not None and time.monotonic() - start >= cfg.max_minutes * 60:
                    break
                if cfg.session_iters is not None and self.iteration - first >= cfg.session_iters:
                    break
                loss = self.step(*self.batch(self.iteration))
                self.iteration += 1
                now = time.monotonic()
                rate = (self.iteration - first) * cfg.batch_size / max(now - start, 1e-9)
                report(self.progress, Progress("mask train", self.iteration, cfg.max_iters, "it",
                                               f"loss {loss:.4f}  {rate:.1f} samples/s",
                                               info={"loss": loss, "samples_per_s": rate}))
                if now - last_save >= cfg.save_every_min * 60:
                    self.save()
                    last_save = last_preview = now
                elif now - last_preview >= cfg.preview_every_min * 60:
                    self.write_preview()
                    last_preview = now
        except KeyboardInterrupt:
            log.info("interrupted at iteration %d: saving", self.iteration)
            self.save()
            self.close()
            raise
        self.save()
        seconds = time.monotonic() - start
        report(self.progress, Progress("mask train", self.iteration, cfg.max_iters, "it", f"loss {loss:.4f}",
                                       finished=True))
        self.close()
        return {"iteration": self.iteration, "iterations": self.iteration - first, "loss": loss,
                "seconds": seconds, "samples_per_s": (self.iteration - first) * cfg.batch_size / max(seconds, 1e-9)}

    def close(self) -> None:
        """Stop the workers and free the folder lock."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
        self.lock.release()
