"""bench/ceiling.py runs at tiny sizes and bench/train.py's table carries the share of that ceiling."""

from __future__ import annotations

from bench import ceiling
from bench.train import HEADER, format_row


def test_ceiling_measures_matmul_and_the_presets_conv() -> None:
    result = ceiling.measure([("tiny", 1)], ["fp32"], threads=1, size=64, repeats=1)
    assert result["matmul"]["fp32"] > 0
    entry = result["configs"]["tiny:1"]
    assert entry["conv"]["input"][0] == 1 and entry["conv"]["gflop_fwd"] > 0
    assert entry["ceiling"]["fp32"] == max(entry["conv_gflops"]["fp32"], result["matmul"]["fp32"])
    lines = ceiling.table(result)
    assert lines[0].startswith("# ceiling") and "tiny:1" in lines[1]


def test_heaviest_conv_is_a_3x3_shape_of_the_training_forward() -> None:
    shapes = ceiling.conv_shapes("tiny", 2)
    assert shapes and all(s["input"][0] in (2, 4) for s in shapes)  # src, dst, or both joined where layers are shared
    assert ceiling.heaviest_conv("tiny", 2)["gflop_fwd"] == max(s["gflop_fwd"] for s in shapes)


def test_train_table_has_share_and_reference_columns() -> None:
    assert "ceiling" in HEADER and "share" in HEADER and "ref DFL" in HEADER
    r = {"preset": "quick96", "batch": 4, "precision": "bf16", "optimizer_kernel": "compiled", "gemm_grad_convs": 0,
         "optimizer_ms": 20.0, "s_per_iter": 0.5, "s_per_iter_repeats": [0.5, 0.45, 0.6], "samples_per_s": 8.0,
         "cpu_s_per_iter": 1.0, "gflop_per_iter": 193.0, "gflop_per_s": 386.0, "peak_rss_gib": 1.3}
    row = format_row(r, 772.0, 1.055)
    assert "50%" in row and "0.45-0.60" in row and "2.11x" in row
    assert format_row(r, None, None).split()[-4:] == ["-", "1.30", "-", "-"]
