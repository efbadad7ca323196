"""Which number format to compute in: bf16 autocast only where the hardware does bf16 natively.

bf16 autocast halves the cost of convolutions on CUDA and on CPUs with AVX-512 BF16 or AMX, and keeps
quality (fp32 master weights; bench/train_quality.py). On other CPUs (AVX2 only) PyTorch emulates bf16
and the same model runs about ten times SLOWER than in fp32 (measured here: saehd-df-128 swap 776 ms a
face in fp32, 7.4 s with bf16 autocast on an AVX2 EPYC). So "auto" picks bf16 only where it pays.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from facedouble.log import get_logger

if TYPE_CHECKING:  # torch is imported where used: the CLI imports PRECISIONS and must start fast
    import torch

log = get_logger("facedouble.train")

PRECISIONS = ("auto", "fp32", "bf16")
# How inference convs run: "auto" = Winograd for the wide 3x3 convs on CPU in fp32 (facedouble.train.models.winograd)
CONV_ALGOS = ("auto", "direct", "winograd")


@functools.cache
def _cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """True if `device` computes bf16 in hardware (CUDA with bf16, or a CPU with AVX-512 BF16 / AMX)."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type != "cpu" or not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return False
    flags = _cpu_flags()
    # without /proc/cpuinfo (macOS, Windows) trust oneDNN's own check
    return not flags or bool(flags & {"avx512_bf16", "amx_bf16"})


def use_bf16(requested: bool | str | None, device: torch.device | str = "cpu") -> bool:
    """Resolve a precision request (None/"auto", True/"bf16", False/"fp32") for `device`.

    An explicit bf16 request on hardware without native bf16 is honoured, with a warning that says why
    it is slow; "auto" never picks emulated bf16.
    """
    if requested in (None, "auto"):
        return native_bf16(device)
    if requested in (False, "fp32"):
        return False
    if requested in (True, "bf16"):
        if not native_bf16(device):
            log.warning("bf16 requested, but %s has no native bf16 (AVX-512 BF16/AMX or a bf16 GPU): it is "
                        "emulated and runs about 10x slower than fp32; use fp32 (or auto) here", device)
        return True
    raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
