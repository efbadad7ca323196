"""Process-wide tuning for long CPU jobs (train, merge), applied once at start-up by the CLI and benches.

Two settings, both measured on the 2-core CPU this project is benchmarked on:

* OpenMP worker threads (PyTorch's intra-op pool) spin for ~300,000 iterations before they sleep. When
  other jobs share the cores, a spinning thread holds a core its descheduled partner needs. With one other
  busy process, quick96 training at batch 4 (bench.train, 2 threads) took 4.83 s/iter by default, 3.80 with
  a 10,000 spin count, 3.85 fully passive and 9.4 spinning forever (ACTIVE); on a quiet machine the 10,000
  spin count is within run-to-run noise of the default while fully passive waiting costs ~15 %. libgomp
  reads it once, when torch loads, so it must be set before anything imports torch; the user's own
  OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
* glibc returns every freed block over 32 MiB to the kernel (mmap), so each model forward pass page-faults
  its large temporaries in again: ~48,000 faults (190 MB zeroed) per batch of 8 saehd-liae-ud-128 faces,
  5-10 % of the time. Keeping freed memory in the heap (mallopt) makes it zero; the process keeps its peak
  memory, which a long render or training run reaches anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
HEAP_KEEP_BYTES = 1 << 30  # blocks up to 1 GiB come from the reusable heap


def tune_process() -> None:
    """Set the OpenMP spin count (unless the user set one) and keep freed memory for reuse (glibc only)."""
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ.setdefault("GOMP_SPINCOUNT", "10000")
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, HEAP_KEEP_BYTES)
        libc.mallopt(_M_TRIM_THRESHOLD, 2 * HEAP_KEEP_BYTES - 1)
    except (OSError, AttributeError):  # musl or another libc without mallopt: keep its defaults
        pass
