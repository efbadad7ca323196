"""Training speed: samples/s, CPU-seconds per iteration, achieved GFLOP/s and peak memory.

    python -m bench.train                      # the issue's configs, fp32 and bf16, 2 threads
    python -m bench.train --configs quick96:4 --iters 5 --precisions fp32
    python -m bench.train --configs quick96:4 --optimizer adabelief --lr 5e-5 --lr-dropout 1   # another recipe

Each (config, batch, precision) runs in a fresh subprocess so peak RSS is its own. The step timed is
the full training step (forward src+dst, SAEHD losses, backward, the optimizer of the preset's DFL recipe
unless --optimizer/--lr/--lr-dropout say otherwise: quick96 RMSprop 2e-4 with lr-dropout 0.3, the SAEHD presets
AdaBelief 5e-5; each config's recipe is printed above its rows); batches come from the
real sampler on GRID faces when available (prefetched by a worker thread, as in training), else
from random images. FLOPs are counted with torch's FlopCounterMode (conv + matmul, forward and
backward), the same work DFL's figures count. Timing: after warm-up, `--repeats` timed blocks of `--iters`
iterations each; s/iter and CPU-s/iter (process CPU time: all threads, the prefetch worker included) are the
median over the blocks, with the blocks' range beside them.

The machine's ceiling is measured first (bench/ceiling.py, same thread count, in its own process): an
n x n x n matmul and each config's heaviest 3x3 conv (forward + backward at its batch), in bf16 and fp32;
"share" is the config's GFLOP/s over the higher of the two in its precision.

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


def recipe_for(preset_name: str, optimizer: str | None = None, lr: float | None = None,
               lr_dropout: float | None = None) -> dict:
    """The preset's DFL training recipe (optimizer, lr, lr_dropout), with any of them overridden."""
    from facedouble.train.config import TrainConfig
    from facedouble.train.models.presets import train_recipe

    given = {"optimizer": optimizer, "lr": lr, "lr_dropout": lr_dropout}
    base = {k: getattr(TrainConfig(), k) for k in given}
    return {**base, **train_recipe(preset_name), **{k: v for k, v in given.items() if v is not None}}


def run_one(preset_name: str, batch: int, precision: str, iters: int, warmup: int, threads: int,
            optimizer_kernel: str = "auto", conv_weight_grad: str = "auto", repeats: int = 3,
            recipe: dict | None = None) -> dict:
    """Time one configuration in this process: `repeats` blocks of `iters` steps, medians over the blocks.

    `recipe`: optimizer, lr and lr_dropout (default: the preset's DFL recipe, as `facedouble train` uses).
    """
    import numpy as np
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from facedouble.train.data import AugmentConfig, BatchSource, FaceBank
    from facedouble.train.models.presets import build_model, count_parameters, preset, recipe_text
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
    recipe = recipe or recipe_for(preset_name)
    tr.mcfg, tr.cfg = cfg, TrainConfig(batch_size=batch, bf16=precision == "bf16", channels_last=True, **recipe)
    tr.bf16 = tr.cfg.bf16  # what Trainer resolves from the config; here the precision asked for
    tr.device, tr.iteration, tr.world, tr.aux, tr.aux_opts = torch.device("cpu"), 0, 1, {}, {}
    tr.dst_split = None  # one dst faceset (Trainer's multi-dst split off)
    torch.manual_seed(0)
    tr.model = build_model(cfg).to(memory_format=torch.channels_last)
    tr.net = tr.model
    from facedouble.train.models import gemm_grad

    gemm = gemm_grad.use_gemm(conv_weight_grad, tr.device, tr.bf16)
    from facedouble.train.optim import make_optimizer, resolve_kernel

    # what `facedouble train` picks for a long session (the compile is paid in the warm-up steps)
    kernel = resolve_kernel(optimizer_kernel, tr.device, recipe["optimizer"], long_session=True)
    tr.opt = make_optimizer(recipe["optimizer"], tr.model.parameters(), recipe["lr"], recipe["lr_dropout"], kernel)

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
    walls, cpus, i = [], [], warmup + 1
    for _ in range(max(repeats, 1)):  # each block timed whole (batch fetch included, as in training)
        t, cpu0 = time.perf_counter(), time.process_time()
        for _ in range(iters):
            tr.step(batch_for(i))
            i += 1
        walls.append((time.perf_counter() - t) / iters)
        cpus.append((time.process_time() - cpu0) / iters)
    if source is not None:
        source.close()
    med, cpu = statistics.median(walls), statistics.median(cpus)
    return {"preset": preset_name, "batch": batch, "precision": precision, "threads": threads,
            "params_M": round(count_parameters(tr.model) / 1e6, 2), "s_per_iter": round(med, 3),
            "samples_per_s": round(batch / med, 2), "cpu_s_per_iter": round(cpu, 2), "repeats": len(walls),
            "iters_per_repeat": iters, "s_per_iter_repeats": [round(w, 3) for w in walls],
            "cpu_s_per_iter_repeats": [round(c, 2) for c in cpus],
            "gflop_per_iter": round(flops / 1e9, 1), "gflop_per_s": round(flops / 1e9 / med, 1),
            "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 2),
            "recipe": recipe_text(recipe), "optimizer_kernel": getattr(tr.opt, "kernel", "fused"),
            "optimizer_ms": round(statistics.median(opt_walls) * 1e3, 1),
            "gemm_grad_convs": gemm_convs, "data": "grid" if source is not None else "random",
            "load_avg_1m": round(os.getloadavg()[0], 2)}


def optimizer_pairs(preset_name: str, pairs: int, threads: int, recipes: list[dict]) -> list[dict]:
    """The optimizer step alone at the preset's size, each recipe's step in turn (`pairs` rounds), one process.

    The recipe changes nothing else in the training step (same model, losses, batches), so this isolates its cost;
    interleaving the recipes makes a shared machine's drift hit all of them alike. Median wall and CPU ms per step.
    """
    import torch

    from facedouble.train.models.presets import build_model, preset, recipe_text
    from facedouble.train.optim import make_optimizer, resolve_kernel

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    models = [build_model(preset(preset_name)).to(memory_format=torch.channels_last) for _ in recipes]
    opts = []
    for model, r in zip(models, recipes, strict=True):
        for p in model.parameters():
            p.grad = torch.randn_like(p) * 1e-3
        kernel = resolve_kernel("auto", torch.device("cpu"), r["optimizer"], long_session=True)
        opts.append(make_optimizer(r["optimizer"], model.parameters(), r["lr"], r["lr_dropout"], kernel))
    for opt in opts:  # compile and warm up
        for _ in range(2):
            opt.step()
    walls: list[list[float]] = [[] for _ in opts]
    cpus: list[list[float]] = [[] for _ in opts]
    for _ in range(pairs):
        for i, opt in enumerate(opts):
            t, c = time.perf_counter(), time.process_time()
            opt.step()
            walls[i].append((time.perf_counter() - t) * 1e3)
            cpus[i].append((time.process_time() - c) * 1e3)
    return [{"preset": preset_name, "recipe": recipe_text(r), "kernel": getattr(o, "kernel", "fused"),
             "step_ms": round(statistics.median(w), 1), "cpu_ms": round(statistics.median(c), 1),
             "range_ms": [round(min(w), 1), round(max(w), 1)], "pairs": pairs,
             "load_avg_1m": round(os.getloadavg()[0], 2)}
            for r, o, w, c in zip(recipes, opts, walls, cpus, strict=True)]


HEADER = (f"{'config':<22}{'prec':<6}{'opt':<9}{'gemm-dW':>8}{'opt ms':>7}{'s/iter':>8}{'range':>12}{'samp/s':>8}"
          f"{'CPU-s':>7}{'GFLOP':>8}{'GFLOP/s':>9}{'ceiling':>9}{'share':>7}{'RSS GiB':>9}{'ref DFL':>8}{'vs ref':>8}")


def format_row(r: dict, ceiling: float | None, dfl: float | None) -> str:
    """One table line for a `run_one` result; `ceiling` is the measured GFLOP/s ceiling in its precision."""
    walls = r.get("s_per_iter_repeats") or [r["s_per_iter"]]
    spread = f"{min(walls):.2f}-{max(walls):.2f}"
    ceil = f"{ceiling:.0f}" if ceiling else "-"
    share = f"{r['gflop_per_s'] / ceiling:.0%}" if ceiling else "-"
    ref = f"{dfl:.2f}" if dfl else "-"
    speed = f"{dfl / r['s_per_iter']:.2f}x" if dfl else "-"
    return (f"{r['preset'] + ':' + str(r['batch']):<22}{r['precision']:<6}{r['optimizer_kernel']:<9}"
            f"{r['gemm_grad_convs']:>8}{r['optimizer_ms']:>7.0f}{r['s_per_iter']:>8.2f}{spread:>12}"
            f"{r['samples_per_s']:>8.2f}{r['cpu_s_per_iter']:>7.2f}{r['gflop_per_iter']:>8.0f}{r['gflop_per_s']:>9.1f}"
            f"{ceil:>9}{share:>7}{r['peak_rss_gib']:>9.2f}{ref:>8}{speed:>8}")


def main() -> None:
    """Measure the ceiling, then run every configuration in its own subprocess and print a table (and JSON lines)."""
    from facedouble.train.models.gemm_grad import WEIGHT_GRAD_MODES
    from facedouble.train.models.presets import recipe_text
    from facedouble.train.optim import OPTIMIZER_KERNELS, OPTIMIZERS

    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Columns: s/iter and CPU-s are medians over the repeats (range: fastest-slowest repeat); share = "
        "GFLOP/s / ceiling, the higher of the measured matmul and the config's heaviest 3x3 conv GFLOP/s in the "
        "same precision (bench/ceiling.py); ref DFL is a reference figure from another machine, never measured "
        "here (its source is printed).")
    ap.add_argument("--configs", default=DEFAULT_CONFIGS, help="preset:batch,... (default: the issue's four)")
    ap.add_argument("--precisions", default="fp32,bf16", help="comma list of fp32, bf16 (default both)")
    ap.add_argument("--iters", type=int, default=4, help="training steps per timed repeat (default 4)")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats per config; medians printed (default 3)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads, for training and the ceiling (default 2)")
    ap.add_argument("--ceiling-size", type=int, default=2048, help="matmul n for the ceiling (default 2048)")
    ap.add_argument("--no-ceiling", action="store_true", help="skip the ceiling measurement (no share column)")
    ap.add_argument("--optimizer-kernel", default="auto", choices=OPTIMIZER_KERNELS,
                    help="AdaBelief/RMSprop step (default: what training picks, compiled where a C++ compiler exists)")
    ap.add_argument("--optimizer", choices=list(OPTIMIZERS), help="optimizer (default: each preset's DFL recipe)")
    ap.add_argument("--lr", type=float, help="learning rate (default: each preset's DFL recipe)")
    ap.add_argument("--lr-dropout", type=float, help="lr-dropout keep probability, 1 = off (default: the recipe's)")
    ap.add_argument("--conv-weight-grad", default="auto", choices=WEIGHT_GRAD_MODES,
                    help="3x3 conv weight gradients (default: what training picks, gemm in fp32 on CPU)")
    ap.add_argument("--optimizer-pairs", metavar="PRESET",
                    help="only time the optimizer step at PRESET's size: its DFL recipe and AdaBelief 5e-5 (SAEHD's), "
                         "interleaved, --repeats rounds")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.optimizer_pairs:
        tune_process()
        saehd = {"optimizer": "adabelief", "lr": 5e-5, "lr_dropout": 1.0}
        recipes = [recipe_for(args.optimizer_pairs, args.optimizer, args.lr, args.lr_dropout), saehd]
        print(f"# optimizer step alone, {args.threads} threads, load average "
              + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
        for r in optimizer_pairs(args.optimizer_pairs, args.repeats, args.threads, recipes):
            print(json.dumps(r))
        return
    if args.one:
        tune_process()  # what the CLI does before torch loads: OpenMP spin count, heap reuse
        name, batch, prec = args.one.split(":")
        recipe = recipe_for(name, args.optimizer, args.lr, args.lr_dropout)
        print(json.dumps(run_one(name, int(batch), prec, args.iters, args.warmup, args.threads,
                                 args.optimizer_kernel, args.conv_weight_grad, args.repeats, recipe)))
        return
    from bench.common import machine

    print(f"# {machine()}, {args.threads} threads; load average at start "
          + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1/5/15 min; shared machine: figures are lower bounds)")
    precisions = args.precisions.split(",")
    if "bf16" in precisions and not native_bf16("cpu"):
        print("# bf16 skipped: this CPU has no native bf16 (AVX-512 BF16/AMX); emulated bf16 runs ~10x slower")
        precisions.remove("bf16")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(args.threads)}
    ceilings: dict = {}
    if not args.no_ceiling:
        cmd = [sys.executable, "-m", "bench.ceiling", "--json", "--configs", args.configs, "--precisions",
               ",".join(precisions), "--threads", str(args.threads), "--size", str(args.ceiling_size),
               "--repeats", str(args.repeats)]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        if proc.returncode == 0:
            from bench.ceiling import table

            result = json.loads(proc.stdout.strip().splitlines()[-1])
            print("\n".join(table(result)), flush=True)
            ceilings = {k: v["ceiling"] for k, v in result["configs"].items()}
        else:
            print(f"# ceiling failed: {proc.stderr.strip().splitlines()[-1:]}")
    print(HEADER)
    print(f"# ref DFL = reference s/iter from another machine, not measured here: {DFL_REFERENCE_SOURCE}")
    for item in args.configs.split(","):
        name, batch = item.split(":")
        recipe = recipe_for(name, args.optimizer, args.lr, args.lr_dropout)
        overridden = any(v is not None for v in (args.optimizer, args.lr, args.lr_dropout))
        print(f"# {item} recipe: {recipe_text(recipe)} "
              f"({'set on this command line' if overridden else 'the preset DFL recipe, as facedouble train uses'})")
        for prec in precisions:
            cmd = [sys.executable, "-m", "bench.train", "--one", f"{name}:{batch}:{prec}", "--iters",
                   str(args.iters), "--repeats", str(args.repeats), "--warmup", str(args.warmup), "--threads",
                   str(args.threads), "--optimizer-kernel", args.optimizer_kernel, "--conv-weight-grad",
                   args.conv_weight_grad]
            cmd += [a for k in ("optimizer", "lr", "lr_dropout") if getattr(args, k) is not None
                    for a in ("--" + k.replace("_", "-"), str(getattr(args, k)))]
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{name}:{batch} {prec}: failed: {proc.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            dfl = DFL.get((name, int(batch)))
            ceiling = ceilings.get(item, {}).get(prec)
            print(format_row(r, ceiling, dfl), flush=True)
            if ceiling:
                r["ceiling_gflop_per_s"] = ceiling
                r["share_of_ceiling"] = round(r["gflop_per_s"] / ceiling, 3)
            if dfl:
                r["dfl_reference_s_per_iter"] = dfl
                r["dfl_reference_source"] = DFL_REFERENCE_SOURCE
            print("# " + json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
