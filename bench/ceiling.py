"""This machine's compute ceiling: bf16 and fp32 matmul and 3x3-conv GFLOP/s at the bench's thread count.

    python -m bench.ceiling                               # 2 threads, 2048^3 matmul, quick96 batch 4 conv
    python -m bench.ceiling --configs saehd-df-128:8 --precisions bf16 --json

The matmul is an n x n x n `torch.mm` (2 n^3 FLOP). The conv is the model's own heaviest 3x3 convolution:
the preset is built, one forward (src and dst at the training batch, as the training step runs it) records
every 3x3 conv's input shape, and the one with the most FLOPs is timed forward + backward (input and weight
gradients), channels-last, in the precision asked (bf16 tensors, as bf16 autocast hands oneDNN). Its
GFLOP/s count direct-convolution work, so a Winograd kernel (fp32 oneDNN) can show more than the matmul.
Each figure is the median of `--repeats` timed blocks after one warm-up. The ceiling a training config is
compared with (`bench.train`'s share column) is the higher of the matmul and its conv in that precision.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
from torch import nn


def _median_seconds(fn, repeats: int, inner: int = 1) -> float:
    """Median wall time of `inner` calls of `fn`, over `repeats` blocks, after one warm-up call."""
    fn()
    blocks = []
    for _ in range(max(repeats, 1)):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        blocks.append((time.perf_counter() - t) / inner)
    return statistics.median(blocks)


def matmul_gflops(n: int, dtype: torch.dtype, repeats: int = 3) -> float:
    """GFLOP/s of an n x n x n matrix product in `dtype` (2 n^3 FLOP per product)."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(dtype)
    b = torch.randn(n, n, generator=gen).to(dtype)
    inner = max(1, int(2e9 // (2 * n ** 3)))  # small sizes: enough products for the clock to resolve
    seconds = _median_seconds(lambda: torch.mm(a, b), repeats, inner)
    return 2 * n ** 3 / seconds / 1e9


def conv_shapes(preset_name: str, batch: int) -> list[dict]:
    """Every 3x3 conv the preset's training forward runs at `batch`: input shape, channels, stride, FLOPs."""
    from facedouble.train.models.presets import build_model, preset

    cfg = preset(preset_name)
    model = build_model(cfg)
    shapes: list[dict] = []

    def record(module: nn.Conv2d, inputs: tuple, output: torch.Tensor) -> None:
        n, cin, h, w = inputs[0].shape
        _, cout, ho, wo = output.shape
        flops = 2 * n * cout * ho * wo * cin * 9 // module.groups
        shapes.append({"input": [n, cin, h, w], "out_channels": cout, "stride": module.stride[0],
                       "padding": module.padding[0], "groups": module.groups, "gflop_fwd": flops / 1e9})

    hooks = [m.register_forward_hook(record) for m in model.modules()
             if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    x = torch.zeros(batch, 3, cfg.resolution, cfg.resolution)
    with torch.no_grad():
        model(x, x)
    for h in hooks:
        h.remove()
    return shapes


def heaviest_conv(preset_name: str, batch: int) -> dict:
    """The preset's 3x3 conv with the most FLOPs at `batch` (the shape that dominates the step)."""
    return max(conv_shapes(preset_name, batch), key=lambda s: s["gflop_fwd"])


def conv_gflops(shape: dict, dtype: torch.dtype, repeats: int = 3) -> float:
    """GFLOP/s of one 3x3 conv forward + backward (input and weight gradients: 3x the forward FLOPs)."""
    n, cin, h, w = shape["input"]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, cin, h, w, generator=gen).to(dtype).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    conv = nn.Conv2d(cin, shape["out_channels"], 3, shape["stride"], shape["padding"], groups=shape["groups"])
    conv = conv.to(dtype=dtype, memory_format=torch.channels_last)
    with torch.no_grad():
        grad = torch.randn_like(conv(x)).contiguous(memory_format=torch.channels_last)

    def step() -> None:
        x.grad = None
        conv.zero_grad(set_to_none=True)
        conv(x).backward(grad)

    seconds = _median_seconds(step, repeats)
    return 3 * shape["gflop_fwd"] / seconds


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def measure(configs: list[tuple[str, int]], precisions: list[str], threads: int, size: int = 2048,
            repeats: int = 3) -> dict:
    """Matmul and per-config conv GFLOP/s for each precision, and the ceiling (the higher) per config."""
    torch.set_num_threads(threads)
    out: dict = {"threads": threads, "matmul_n": size, "repeats": repeats, "matmul": {}, "configs": {}}
    for prec in precisions:
        out["matmul"][prec] = round(matmul_gflops(size, DTYPES[prec], repeats), 1)
    for name, batch in configs:
        shape = heaviest_conv(name, batch)
        entry: dict = {"conv": shape, "conv_gflops": {}, "ceiling": {}}
        for prec in precisions:
            conv = round(conv_gflops(shape, DTYPES[prec], repeats), 1)
            entry["conv_gflops"][prec] = conv
            entry["ceiling"][prec] = max(conv, out["matmul"][prec])
        out["configs"][f"{name}:{batch}"] = entry
    out["load_avg_1m"] = round(os.getloadavg()[0], 2)
    return out


def table(result: dict) -> list[str]:
    """Printable lines (all prefixed '#', so they sit above a results table as comments)."""
    lines = [f"# ceiling, {result['threads']} threads, median of {result['repeats']} repeats, load average "
             f"{result['load_avg_1m']:.2f}: matmul {result['matmul_n']}^3 "
             + ", ".join(f"{p} {v:.0f} GFLOP/s" for p, v in result["matmul"].items())]
    for key, entry in result["configs"].items():
        s = entry["conv"]
        n, cin, h, w = s["input"]
        lines.append(f"#   {key}: heaviest 3x3 conv {cin}->{s['out_channels']} at {h}x{w}, batch {n}, stride "
                     f"{s['stride']}, fwd+bwd {3 * s['gflop_fwd']:.1f} GFLOP: "
                     + ", ".join(f"{p} {v:.0f}" for p, v in entry["conv_gflops"].items())
                     + " GFLOP/s; ceiling (higher of matmul and conv) "
                     + ", ".join(f"{p} {v:.0f}" for p, v in entry["ceiling"].items()))
    return lines


def parse_configs(text: str) -> list[tuple[str, int]]:
    """'preset:batch,preset:batch' -> [(preset, batch), ...]."""
    return [(item.split(":")[0], int(item.split(":")[1])) for item in text.split(",") if item]


def main() -> None:
    """Measure and print the ceilings (or one JSON line with --json)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="quick96:4", help="preset:batch,... whose heaviest 3x3 conv to time")
    ap.add_argument("--precisions", default="fp32,bf16", help="comma list of fp32, bf16 (default both)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2, as bench.train)")
    ap.add_argument("--size", type=int, default=2048, help="matmul n for n x n x n (default 2048)")
    ap.add_argument("--repeats", type=int, default=3, help="timed blocks; the median is printed (default 3)")
    ap.add_argument("--json", action="store_true", help="print one JSON line instead of the table")
    args = ap.parse_args()
    result = measure(parse_configs(args.configs), args.precisions.split(","), args.threads, args.size, args.repeats)
    print(json.dumps(result) if args.json else "\n".join(table(result)))


if __name__ == "__main__":
    main()
