"""bench/quality_compare.py: runs compared at equal iterations, not equal minutes."""

from __future__ import annotations

import csv
import math

import pytest

from bench import quality, quality_compare


def _run(folder, rows):
    folder.mkdir()
    with (folder / "quality.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=quality.COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, 0.5) for k in quality.COLUMNS})
    return folder


def test_runs_are_compared_at_the_largest_common_iteration_count(tmp_path, capsys):
    # a fast run and a slow one (a loaded machine): the slow one's 40 minutes are the fast one's 10
    fast = _run(tmp_path / "fast", [{"minutes": 10, "iterations": 400, "id_to_source": 0.6},
                                    {"minutes": 40, "iterations": 1600, "id_to_source": 0.4}])
    slow = _run(tmp_path / "slow", [{"minutes": 10, "iterations": 100, "id_to_source": 0.7},
                                    {"minutes": 40, "iterations": 400, "id_to_source": 0.6}])
    assert quality_compare.at(quality_compare.load(fast), "id_to_source", "iterations", 800) == pytest.approx(0.5)
    assert math.isnan(quality_compare.at(quality_compare.load(slow), "id_to_source", "iterations", 800))
    quality_compare.main([str(fast), str(slow), "--labels", "a,b", "--out", str(tmp_path / "c.png")])
    out = capsys.readouterr().out
    assert "at iterations = 400" in out and "| identity distance to source | 0.600 | 0.600 |" in out
    assert (tmp_path / "c.png").stat().st_size > 0
    with pytest.raises(SystemExit):
        quality_compare.main([str(fast), str(tmp_path / "missing"), "--out", str(tmp_path / "d.png")])
