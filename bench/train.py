"""Training speed: samples/s, CPU-seconds per iteration, achieved GFLOP/s and peak memory.

    python -m bench.train                      # the issue's configs, fp32 and bf16, 2 threads
    python -m bench.train --configs quick96:4 --iters 5 --precisions fp32

Each (config, batch, precision) runs in a fresh subprocess so peak RSS is its own. The step timed is
the full training step (forward src+dst, SAEHD losses, backward, AdaBelief); batches come from the
real sampler on GRID faces when available (prefetched by a worker thread, as in training), else
from random images. FLOPs are counted with torch's FlopCounterMode (conv + matmul, forward and
backward), the same work DFL's figures count. Medians over `--iters` timed iterations after warm-up.

DeepFaceLab is NOT run here: the "ref DFL" column is a reference figure measured on another machine
(see DFL_REFERENCE_SOURCE, issue 19), printed with its provenance, never as if measured in this run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from facedouble.nn.precision import native_bf16
from facedouble.runtime import tune_process

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT.parent / "shared" / "data" / "grid"
# Reference DeepFaceLab s/iter (its real SAEHD/Quick96 graphs), from issue 19: NOT measured by this bench.
# Median of the two runs there (each a median of 8 iterations), which moved up to 30 % between runs.
DFL_REFERENCE_SOURCE = ("DeepFaceLab TF 2.21 CPU fp32, AMD EPYC 2 cores with AVX-512 BF16, 2026 (issue 19, "
                        "runs 1 and 2 averaged; not measured in this run)")
DFL_REFERENCE_RUNS = {("quick96", 4): (1.04, 1.07), ("quick96", 8): (2.29, 1.65),
                      ("saehd-liae-ud-128", 8): (4.82, 3.35), ("saehd-df-128", 8): (9.85, 8.38)}
DFL = {k: round(sum(v) / len(v), 3) for k, v in DFL_REFERENCE_RUNS.items()}
DEFAULT_CONFIGS = "quick96:4,quick96:8,saehd-liae-ud-128:8,saehd-df-128:8"


def _faceset(size: int) -> Path | None:
    """A GRID faceset at `size` px (extracted once into /tmp), or None without footage."""
    clip = GRID / "bbaf2n.mpg"
    if not clip.exists():
        return None
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"facedouble_bench_faceset_{size}"
    if not (out / ".done").exists():
        from facedouble.extract.pipeline import ExtractConfig, extract

        extract(clip, out, ExtractConfig(size=size, face_type="full", progress=False))
        (out / ".done").touch()
    return out


def run_one(preset_name: str, batch: int, precision: str, iters: int, warmup: int, threads: int,
            optimizer_kernel: str = "auto", conv_weight_grad: str = "auto") -> dict:
    """Time one configuration in this process."""
    import numpy as np
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from facedouble.train.data import AugmentConfig, BatchSource, FaceBank
    from facedouble.train.models.presets import build_model, count_parameters, preset
    from facedouble.train.trainer import TrainConfig, Trainer

    torch.set_num_threads(threads)
    cfg = preset(preset_name)
    res = cfg.resolution
    folder = _faceset(res)
    if folder is not None:
        bank = FaceBank(folder, res, "full")
        source = BatchSource(bank, bank, batch, AugmentConfig(), seed=0, workers=1)
    else:
        rng = np.random.default_rng(0)
        fake = {f"{s}_{k}": rng.random((batch, res, res, c), dtype=np.float32)
                for s in ("src", "dst") for k, c in (("warped", 3), ("target", 3), ("mask", 1), ("eyes_mouth", 1))}
        source = None
    # A Trainer without its data/consent setup: only model, optimizer and the step are needed.
    tr = Trainer.__new__(Trainer)
    tr.mcfg, tr.cfg = cfg, TrainConfig(batch_size=batch, bf16=precision == "bf16", channels_last=True)
    tr.bf16 = tr.cfg.bf16  # what Trainer resolves from the config; here the precision asked for
    tr.device, tr.iteration, tr.world, tr.aux, tr.aux_opts = torch.device("cpu"), 0, 1, {}, {}
    torch.manual_seed(0)
    tr.model = build_model(cfg).to(memory_format=torch.channels_last)
    tr.net = tr.model
    from facedouble.train.models import gemm_grad

    gemm = gemm_grad.use_gemm(conv_weight_grad, tr.device, tr.bf16)
    from facedouble.train.optim import AdaBelief, resolve_kernel

    # what `facedouble train` picks for a long session (the compile is paid in the warm-up steps)
    kernel = resolve_kernel(optimizer_kernel, tr.device, "adabelief", 1.0, long_session=True)
    tr.opt = AdaBelief(tr.model.parameters(), kernel=kernel)

    def batch_for(i: int) -> dict:
        return source.get(i) if source is not None else fake

    # FLOPs counted with oneDNN's convs (the GEMM weight gradients do the same work as in-place
    # addmm, which the counter does not see), before conversion
    with FlopCounterMode(display=False) as fc:
        tr.step(batch_for(warmup))
    flops = fc.get_total_flops()
    gemm_convs = gemm_grad.convert(tr.model) if gemm else 0
    for i in range(max(warmup, 1)):
        tr.step(batch_for(i))
    opt_walls: list[float] = []
    plain_step = tr.opt.step

    def timed_step() -> None:  # the optimizer's share of the step, reported on its own
        t = time.perf_counter()
        plain_step()
        opt_walls.append(time.perf_counter() - t)

    tr.opt.step = timed_step
    walls, cpu0 = [], time.process_time()
    for i in range(iters):
        b = batch_for(warmup + 1 + i)
        t = time.perf_counter()
        tr.step(b)
        walls.append(time.perf_counter() - t)
    cpu = (time.process_time() - cpu0) / iters
    if source is not None:
        source.close()
    med = statistics.median(walls)
    return {"preset": preset_name, "batch": batch, "precision": precision, "threads": threads,
            "params_M": round(count_parameters(tr.model) / 1e6, 2), "s_per_iter": round(med, 3),
            "samples_per_s": round(batch / med, 2), "cpu_s_per_iter": round(cpu, 2),
            "gflop_per_iter": round(flops / 1e9, 1), "gflop_per_s": round(flops / 1e9 / med, 1),
            "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 2),
            "optimizer_kernel": tr.opt.kernel, "optimizer_ms": round(statistics.median(opt_walls) * 1e3, 1),
            "gemm_grad_convs": gemm_convs, "data": "grid" if source is not None else "random",
            "load_avg_1m": round(os.getloadavg()[0], 2)}


def main() -> None:
    """Run every configuration in its own subprocess and print a table (and JSON lines)."""
    from facedouble.train.models.gemm_grad import WEIGHT_GRAD_MODES
    from facedouble.train.optim import OPTIMIZER_KERNELS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default=DEFAULT_CONFIGS, help="preset:batch,... (default: the issue's)")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--optimizer-kernel", default="auto", choices=OPTIMIZER_KERNELS,
                    help="AdaBelief step (default: what training picks, compiled where a C++ compiler exists)")
    ap.add_argument("--conv-weight-grad", default="auto", choices=WEIGHT_GRAD_MODES,
                    help="3x3 conv weight gradients (default: what training picks, gemm in fp32 on CPU)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        tune_process()  # what the CLI does before torch loads: OpenMP spin count, heap reuse
        name, batch, prec = args.one.split(":")
        print(json.dumps(run_one(name, int(batch), prec, args.iters, args.warmup, args.threads,
                                 args.optimizer_kernel, args.conv_weight_grad)))
        return
    print(f"# {os.cpu_count()} CPUs visible, {args.threads} threads; load average at start "
          f"{os.getloadavg()[0]:.2f} (shared machine: figures are lower bounds)")
    print(f"{'config':<22}{'prec':<6}{'opt':<9}{'gemm-dW':>8}{'opt ms':>7}{'s/iter':>8}{'samp/s':>8}{'CPU-s':>7}"
          f"{'GFLOP':>8}{'GFLOP/s':>9}"
          f"{'RSS GiB':>9}{'ref DFL':>8}{'vs ref':>8}")
    print(f"# ref DFL = reference s/iter from another machine, not measured here: {DFL_REFERENCE_SOURCE}")
    precisions = args.precisions.split(",")
    if "bf16" in precisions and not native_bf16("cpu"):
        print("# bf16 skipped: this CPU has no native bf16 (AVX-512 BF16/AMX); emulated bf16 runs ~10x slower")
        precisions.remove("bf16")
    for item in args.configs.split(","):
        name, batch = item.split(":")
        for prec in precisions:
            cmd = [sys.executable, "-m", "bench.train", "--one", f"{name}:{batch}:{prec}", "--iters",
                   str(args.iters), "--warmup", str(args.warmup), "--threads", str(args.threads),
                   "--optimizer-kernel", args.optimizer_kernel, "--conv-weight-grad", args.conv_weight_grad]
            env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(args.threads)}
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{name}:{batch} {prec}: failed: {proc.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            dfl = DFL.get((name, int(batch)))
            speed = f"{dfl / r['s_per_iter']:.2f}x" if dfl else "-"
            ref = f"{dfl:.2f}" if dfl else "-"
            print(f"{name + ':' + batch:<22}{prec:<6}{r['optimizer_kernel']:<9}"
                  f"{r['gemm_grad_convs']:>8}{r['optimizer_ms']:>7.0f}"
                  f"{r['s_per_iter']:>8.2f}{r['samples_per_s']:>8.2f}"
                  f"{r['cpu_s_per_iter']:>7.2f}{r['gflop_per_iter']:>8.0f}{r['gflop_per_s']:>9.1f}"
                  f"{r['peak_rss_gib']:>9.2f}{ref:>8}{speed:>8}", flush=True)
            if dfl:
                r["dfl_reference_s_per_iter"] = dfl
                r["dfl_reference_source"] = DFL_REFERENCE_SOURCE
            print("# " + json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
