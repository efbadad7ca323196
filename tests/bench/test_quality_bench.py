"""bench/quality.py end to end at a tiny size: train a few seconds, two checkpoints, four frames a clip."""

from __future__ import annotations

import csv
import math

import pytest

from bench import quality
from bench.common import GRID_DIR


def test_checkpoints_are_cut_at_the_budget_and_end_there() -> None:
    assert quality.parse_checkpoints("5,10,20,40,80,120", 75) == [5, 10, 20, 40, 75]
    assert quality.parse_checkpoints(None, 120) == [5, 10, 20, 40, 80, 120]
    with pytest.raises(SystemExit):
        quality.parse_checkpoints("5,-1", 10)


@pytest.mark.skipif(not (GRID_DIR / f"{quality.TARGET}.mpg").exists(), reason=f"GRID footage missing in {GRID_DIR}")
def test_quality_bench_writes_table_plot_and_strip(tmp_path) -> None:
    out = tmp_path / "q"
    args = quality.parse_args(["--preset", "tiny", "--minutes", "0.04", "--checkpoints", "0.02", "--frames", "4",
                               "--threads", "1", "--batch", "2", "--out", str(out)])
    quality.run(args)
    for name in ("quality.csv", "quality.md", "quality.png", "strip.png"):
        assert (out / name).stat().st_size > 0, name
    rows = list(csv.DictReader((out / "quality.csv").open()))
    assert [float(r["minutes"]) for r in rows] == [0.02, 0.04]
    for row in rows:
        assert int(row["iterations"]) >= 1 and float(row["cpu_s"]) > 0
        for key, _, _ in quality.METRICS:
            assert math.isfinite(float(row[key])), key
        assert 0 < float(row["same_person_ref"]) < float(row["target_to_source"])  # same man nearer than the target
    table = (out / "quality.md").read_text()
    assert "residual flicker" in table and "gaze error" in table and "seam score" in table and "load average" in table
