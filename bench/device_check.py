"""GPU-ready check in one script: needs only torch, numpy and safetensors (no PyAV, MediaPipe, dlib, cv2).

    bash bench/device_check.sh                        # on a lent GPU machine: all presets, bf16, CUDA
    python -m bench.device_check --device cpu --tiny  # here / in CI: the same code paths, tiny sizes

Rows: the training step of each preset (bf16 autocast on CUDA, channels-last, optionally torch.compile)
with samples/s and peak memory; the swapper's faces/s at a large batch; a CPU/device agreement check of
one swap in fp32; a tiny end-to-end train -> swap on the real GRID faces in bench/data/device_faces.npz
(`tools/make_device_faces.py`). Exits 1 if anything misbehaves (non-finite loss, CPU/device mismatch
beyond tolerance, the end-to-end model not learning). Imports only pure-torch project modules
(facedouble.train.models, losses, optim), never the extract/merge stack.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from facedouble.train.losses import identity_loss, ssim
from facedouble.train.models.presets import PRESETS, build_model, count_parameters, preset
from facedouble.train.optim import AdaBelief

FACES = Path(__file__).resolve().parent / "data" / "device_faces.npz"
TRAIN_PRESETS = ("quick96", "saehd-df-128", "saehd-liae-ud-128")
MISMATCH_TOL = 2e-3  # max |cpu - device| of a fp32 swap in [0,1] (TF32 off): far below one 8-bit level


class CheckFailedError(Exception):
    """A misbehaviour that makes the script exit non-zero."""


def load_faces(resolution: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The stored src/dst faces as NCHW float in [0,1] at `resolution`, channels-last, on `device`."""
    with np.load(FACES) as data:
        src, dst = data["src"], data["dst"]
    out = []
    for a in (src, dst):
        x = torch.from_numpy(a).permute(0, 3, 1, 2).float().div_(255).to(device)
        if x.shape[-1] != resolution:
            x = torch.nn.functional.interpolate(x, size=(resolution, resolution), mode="bilinear",
                                                antialias=True, align_corners=False).clamp_(0, 1)
        out.append(x.contiguous(memory_format=torch.channels_last))
    return out[0], out[1]


def face_mask(n: int, resolution: int, device: torch.device) -> torch.Tensor:
    """A centred ellipse mask N1HW: the faces carry no landmarks here, and the aligned face sits centred."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, resolution), torch.linspace(-1, 1, resolution), indexing="ij")
    m = ((xx / 0.75) ** 2 + (yy / 0.9) ** 2 <= 1).float()
    return m.expand(n, 1, resolution, resolution).to(device).contiguous(memory_format=torch.channels_last)


def take(x: torch.Tensor, n: int, offset: int) -> torch.Tensor:
    """`n` faces from `x` starting at `offset` (wrapping), so any batch size works with 32 stored faces."""
    idx = (torch.arange(n) + offset) % len(x)
    return x[idx.to(x.device)].contiguous(memory_format=torch.channels_last)


def sync(device: torch.device) -> None:
    """Wait for the device so wall times measure the work, not the launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_gib(device: torch.device) -> float:
    """Peak memory: allocated CUDA memory, or the process's peak RSS on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def reset_peak(device: torch.device) -> None:
    """Start a fresh peak-memory window (CUDA only: RSS peaks cannot be reset)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def autocast(device: torch.device, bf16: bool):
    """bf16 autocast on `device`, or nothing."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def make_step(model: torch.nn.Module, opt: torch.optim.Optimizer, device: torch.device, bf16: bool,
              resolution: int, compiled: bool):
    """The SAEHD training step (forward src+dst, losses, backward, AdaBelief); returns the loss tensor."""
    net = torch.compile(model) if compiled else model

    def step(src: torch.Tensor, dst: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        with autocast(device, bf16):
            out = net(src, dst)
        loss = (identity_loss(out["src_rgb"], out["src_mask"], src, mask, resolution).mean()
                + identity_loss(out["dst_rgb"], out["dst_mask"], dst, mask, resolution).mean())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    return step


def bench_train(name: str, batch: int, iters: int, device: torch.device, bf16: bool, compiled: bool) -> dict:
    """Time the training step of one preset; fails on a non-finite loss."""
    cfg = preset(name)
    res = cfg.resolution
    torch.manual_seed(0)
    model = build_model(cfg).to(device).to(memory_format=torch.channels_last)
    opt = AdaBelief(model.parameters())
    src, dst = load_faces(res, device)
    mask = face_mask(batch, res, device)
    step = make_step(model, opt, device, bf16, res, compiled)
    reset_peak(device)
    t0 = time.perf_counter()
    for i in range(2):  # warm-up: cuDNN autotuning, the compile, the optimizer's state
        loss = step(take(src, batch, i), take(dst, batch, i), mask)
    sync(device)
    warm_s = time.perf_counter() - t0
    walls = []
    for i in range(iters):
        s, d = take(src, batch, 2 + i), take(dst, batch, 2 + i)
        sync(device)
        t = time.perf_counter()
        loss = step(s, d, mask)
        sync(device)
        walls.append(time.perf_counter() - t)
    value = float(loss)
    if not np.isfinite(value):
        raise CheckFailedError(f"train {name} b{batch}: loss became {value}")
    med = statistics.median(walls)
    return {"row": f"train {name} b{batch}", "value": f"{batch / med:.1f} samples/s",
            "detail": f"{med * 1e3:.1f} ms/step, warm-up {warm_s:.1f} s, loss {value:.3f}, "
                      f"{count_parameters(model) / 1e6:.1f} M params", "peak_gib": peak_gib(device)}


def bench_swap(name: str, batch: int, iters: int, device: torch.device, bf16: bool, compiled: bool) -> dict:
    """Faces/s of the dst->src swap path at a large batch (inference mode)."""
    cfg = preset(name)
    torch.manual_seed(0)
    model = build_model(cfg).to(device).to(memory_format=torch.channels_last).eval()
    fn = torch.compile(model.swap) if compiled else model.swap
    _, dst = load_faces(cfg.resolution, device)
    x = take(dst, batch, 0)
    reset_peak(device)
    walls = []
    with torch.inference_mode(), autocast(device, bf16):
        for i in range(iters + 1):
            sync(device)
            t = time.perf_counter()
            rgb, mask = fn(x)
            sync(device)
            if i:  # the first call warms up
                walls.append(time.perf_counter() - t)
    if not (torch.isfinite(rgb).all() and torch.isfinite(mask).all()):
        raise CheckFailedError(f"swap {name}: non-finite output")
    med = statistics.median(walls)
    return {"row": f"swap {name} b{batch}", "value": f"{batch / med:.0f} faces/s",
            "detail": f"{med * 1e3:.1f} ms/batch", "peak_gib": peak_gib(device)}


def check_agreement(device: torch.device) -> dict:
    """The same weights and faces swapped in fp32 on the CPU and on `device` must agree."""
    cfg = preset("tiny")
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    _, dst = load_faces(cfg.resolution, torch.device("cpu"))
    with torch.inference_mode():
        ref_rgb, ref_mask = model.swap(dst[:8])
        saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        try:
            model_dev = model.to(device).to(memory_format=torch.channels_last)
            rgb, mask = model_dev.swap(dst[:8].to(device).contiguous(memory_format=torch.channels_last))
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
    diff = max(float((rgb.cpu() - ref_rgb).abs().max()), float((mask.cpu() - ref_mask).abs().max()))
    if not np.isfinite(diff) or diff > MISMATCH_TOL:
        raise CheckFailedError(f"cpu vs {device.type} swap differ by {diff:.2e} (tolerance {MISMATCH_TOL:.0e})")
    return {"row": f"agree cpu/{device.type} fp32", "value": f"max diff {diff:.1e}",
            "detail": f"tolerance {MISMATCH_TOL:.0e}, channels-last on {device.type}", "peak_gib": None}


def end_to_end(iters: int, device: torch.device, bf16: bool, batch: int = 16) -> dict:
    """Train the tiny preset on the stored real faces, then swap dst->src; it must learn and stay finite."""
    cfg = preset("tiny")
    res = cfg.resolution
    torch.manual_seed(0)
    model = build_model(cfg).to(device).to(memory_format=torch.channels_last)
    opt = AdaBelief(model.parameters(), lr=5e-4)  # above DFL's 5e-5 so a few hundred steps show learning
    src, dst = load_faces(res, device)
    batch = min(batch, len(src))
    mask = face_mask(batch, res, device)
    step = make_step(model, opt, device, bf16, res, compiled=False)
    t = time.perf_counter()
    losses = []
    for i in range(iters):
        loss = float(step(take(src, batch, i * batch), take(dst, batch, i * batch), mask))
        if not np.isfinite(loss):
            raise CheckFailedError(f"end-to-end: loss became {loss} at step {i}")
        losses.append(loss)
    sync(device)
    train_s = time.perf_counter() - t
    model.eval()
    with torch.inference_mode(), autocast(device, bf16):
        rgb, swap_mask = model.swap(dst)
        rec = model(src, dst)["dst_rgb"]
    rgb, rec = rgb.float(), rec.float()
    if not (torch.isfinite(rgb).all() and torch.isfinite(swap_mask).all()):
        raise CheckFailedError("end-to-end: swap output not finite")
    first, last = statistics.mean(losses[:3]), statistics.mean(losses[-3:])
    if not last < 0.8 * first:
        raise CheckFailedError(f"end-to-end: loss {first:.3f} -> {last:.3f} in {iters} steps: not learning")
    rec_ssim = float(ssim(rec * mask[:1], dst * mask[:1], 5).mean())
    return {"row": f"e2e tiny {iters} steps", "value": f"loss {first:.2f}->{last:.2f}",
            "detail": f"dst SSIM {rec_ssim:.3f}, swap {tuple(rgb.shape)}, {train_s:.1f} s",
            "peak_gib": peak_gib(device)}


def run(args: argparse.Namespace) -> int:
    """Run every check, print one table; 0 if all passed, 1 otherwise."""
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("CUDA requested but torch.cuda.is_available() is False", file=sys.stderr)
        return 1
    bf16 = device.type == "cuda" if args.precision == "auto" else args.precision == "bf16"
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
    presets = ["tiny"] if args.tiny else list(args.presets.split(","))
    batch = args.batch or (4 if args.tiny else 64)
    swap_batch = args.swap_batch or (16 if args.tiny else 1024)
    iters = args.iters or (2 if args.tiny else 10)
    e2e_iters = args.e2e_iters or (20 if args.tiny else 400)
    print(f"# device_check: {device} ({name}), torch {torch.__version__}, python {platform.python_version()}, "
          f"{'bf16' if bf16 else 'fp32'}, channels-last, compile {'on' if args.compile else 'off'}")
    jobs = [(lambda n=n: bench_train(n, batch, iters, device, bf16, args.compile)) for n in presets]
    jobs += [(lambda n=n: bench_swap(n, swap_batch, iters, device, bf16, args.compile)) for n in presets]
    if device.type != "cpu":
        jobs.append(lambda: check_agreement(device))
    jobs.append(lambda: end_to_end(e2e_iters, device, bf16, 8 if args.tiny else 16))
    failures = []
    print(f"{'check':<30}{'result':<22}{'peak GiB':>9}  detail")
    for job in jobs:
        try:
            r = job()
        except CheckFailedError as exc:
            failures.append(str(exc))
            print(f"{'FAILED':<30}{'':<22}{'':>9}  {exc}", flush=True)
            continue
        except Exception as exc:  # noqa: BLE001 - a CUDA error is a finding to report, not a crash
            failures.append(f"{type(exc).__name__}: {exc}")
            print(f"{'ERROR':<30}{'':<22}{'':>9}  {type(exc).__name__}: {str(exc).splitlines()[0][:160]}",
                  flush=True)
            continue
        peak = f"{r['peak_gib']:.2f}" if r["peak_gib"] is not None else "-"
        print(f"{r['row']:<30}{r['value']:<22}{peak:>9}  {r['detail']}", flush=True)
    print(f"# {'FAIL: ' + '; '.join(failures) if failures else 'all checks passed'}")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    """Parse the flags and run."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--presets", default=",".join(TRAIN_PRESETS), help=f"of {', '.join(PRESETS)}")
    ap.add_argument("--tiny", action="store_true", help="the tiny preset only, few steps (CPU / CI)")
    ap.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"),
                    help="auto: bf16 on CUDA, fp32 on a CPU")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (pays on CUDA at large batch)")
    ap.add_argument("--batch", type=int, default=0, help="training batch (default 64, tiny 4)")
    ap.add_argument("--swap-batch", type=int, default=0, help="swap batch (default 1024, tiny 16)")
    ap.add_argument("--iters", type=int, default=0, help="timed steps per row (default 10, tiny 2)")
    ap.add_argument("--e2e-iters", type=int, default=0, help="end-to-end training steps (default 400, tiny 20)")
    args = ap.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
