"""Process tuning (facedouble.runtime): large freed blocks are reused instead of page-faulted in again."""

from __future__ import annotations

import subprocess
import sys

import pytest

FAULTS = """
import resource, sys
import numpy as np
if sys.argv[1] == "tuned":
    from facedouble.runtime import tune_process
    tune_process()
def churn():
    for _ in range(4):
        block = np.empty(64 << 20, np.uint8)
        block.fill(1)  # touch every page, as a model's temporaries are
        del block
churn()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
churn()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_tuned_process_reuses_freed_memory():
    def faults(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True)
        return int(out.stdout.strip())

    # glibc's default maps and zeroes every 64 MiB block anew: 4 blocks, at least one fault per 2 MiB huge page
    default = faults("default")
    assert default >= 4 * 32
    assert faults("tuned") * 20 < default
