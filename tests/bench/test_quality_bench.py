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


def test_extra_dst_must_be_another_grid_clip_and_none_keeps_old_records_valid() -> None:
    for bad in (["--extra-dst", quality.TARGET], ["--extra-dst", "nosuchclip"], ["--plate-parts", "nose"]):
        with pytest.raises(SystemExit):
            quality.parse_args(bad)
    plain = quality.parse_args(["--preset", "tiny"])
    assert "extra_dst" not in quality._args_record(plain)  # records written before the option still match
    assert quality._args_record(quality.parse_args(["--preset", "tiny", "--extra-dst", "sbia1a"]))["extra_dst"] \
        == ["sbia1a"]


@pytest.mark.skipif(not (GRID_DIR / f"{quality.TARGET}.mpg").exists(), reason=f"GRID footage missing in {GRID_DIR}")
@pytest.mark.parametrize("extra", [["--plate-parts", "mouth,eyes"], ["--extra-dst", "sbia1a"]],
                         ids=["one-dst-plate-parts", "multi-dst"])
def test_quality_bench_writes_table_plot_and_strip(tmp_path, extra) -> None:
    out = tmp_path / "q"
    args = quality.parse_args(["--preset", "tiny", "--minutes", "0.04", "--checkpoints", "0.02", "--frames", "4",
                               "--threads", "1", "--batch", "2", "--out", str(out), *extra])
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
    assert "seam step" in table and ("extra dst sbia1a" in table) == ("--extra-dst" in extra)
    assert ("| --keep-from-plate mouth,eyes |" in table) == ("--plate-parts" in extra)
