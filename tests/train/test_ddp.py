"""Data-parallel training: the same command under torchrun with 2 CPU processes (gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from facedouble.nn import checkpoint as ck

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("recipe", [[], ["--optimizer", "rmsprop", "--lr-dropout", "0.3"]],
                         ids=["adabelief", "rmsprop-lr-dropout"])
def test_torchrun_two_processes_keep_identical_weights(crowd_faceset, tmp_path: Path, recipe: list[str]) -> None:
    """lr-dropout draws a random keep mask every step: the ranks must draw the same one (else they diverge)."""
    model = tmp_path / "m"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(REPO / "tests" / "train" / "train_cli.py"), "train", "--src", str(crowd_faceset), "--model",
           str(model), "--preset", "tiny", "--pretrain", "--max-iters", "3", "--batch-size", "2", "--workers", "0",
           "--threads", "1", *recipe]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = json.loads((model / "ranks.json").read_text())
    assert len(ranks["digests"]) == 2 and ranks["digests"][0] == ranks["digests"][1]
    state = ck.load_state(model)
    assert state["iteration"] == 3 and state["world_size"] == 2
