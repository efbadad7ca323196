"""Overlay several bench.quality runs against training iterations (or CPU-seconds), one panel per metric.

    python -m bench.quality_compare RUN_DIR [RUN_DIR ...] --out compare.png [--x iterations|cpu_s]
                                    [--labels "plain,eyes-mouth priority,3 dst"]

Runs that shared a machine with different loads reach different iteration counts in the same wall minutes,
so comparing them at equal minutes compares the load, not the training: this puts each run's checkpoints
at their iteration count (the default) or the training process's CPU-seconds. It also prints, per run, each
metric interpolated (linearly in log iterations) at the largest iteration count every run reached, the
comparison at equal samples that the table rows alone do not give.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import numpy as np

from bench.quality import METRICS


def load(run: Path) -> list[dict[str, float]]:
    """The rows of `run`/quality.csv as floats (NaN where empty); SystemExit when there is none."""
    path = run / "quality.csv" if run.is_dir() else run
    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise SystemExit(f"cannot read {path}: {exc.strerror or exc}") from None
    if not rows:
        raise SystemExit(f"{path} has no checkpoints")
    return [{k: _float(v) for k, v in row.items()} for row in rows]


def _float(value: str | None) -> float:
    try:
        return float(value) if value not in (None, "") else math.nan
    except ValueError:
        return math.nan


def at(rows: list[dict[str, float]], key: str, x_key: str, x: float) -> float:
    """`key` interpolated at `x` (linear in log x between the run's checkpoints; NaN outside them)."""
    xs = np.array([r[x_key] for r in rows])
    ys = np.array([r[key] for r in rows])
    ok = np.isfinite(xs) & np.isfinite(ys) & (xs > 0)
    if not ok.any() or x < xs[ok].min() or x > xs[ok].max():
        return math.nan
    return float(np.interp(math.log(x), np.log(xs[ok]), ys[ok]))


def plot(runs: list[tuple[str, list[dict[str, float]]]], x_key: str) -> np.ndarray:
    """Small multiples, every run in each metric's panel, as an RGB image (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 4
    nrows = math.ceil(len(METRICS) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.4 * nrows), squeeze=False)
    for ax, (key, name, unit) in zip(axes.flat, METRICS, strict=False):
        for label, rows in runs:
            ax.plot([r[x_key] for r in rows], [r[key] for r in rows], "o-", markersize=3, label=label)
        ax.set_xscale("log")
        if key in ("id_to_source", "id_to_heldout"):
            ax.axhline(runs[0][1][0].get("same_person_ref", math.nan), color="tab:green", ls="--", lw=1)
        ax.set_title(f"{name}\n({unit})", fontsize=7)
        ax.set_xlabel("training iterations" if x_key == "iterations" else "training CPU-seconds", fontsize=6)
        ax.tick_params(labelsize=6)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=6, loc="best")
    for ax in list(axes.flat)[len(METRICS):]:
        ax.axis("off")
    fig.tight_layout()
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    import cv2

    from facedouble.io.atomic import atomic_write_bytes

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="bench.quality output folders (or their quality.csv)")
    ap.add_argument("--out", type=Path, required=True, help="PNG to write")
    ap.add_argument("--x", choices=("iterations", "cpu_s"), default="iterations")
    ap.add_argument("--labels", help="comma list, one per run (default: the folder names)")
    args = ap.parse_args(argv)
    labels = args.labels.split(",") if args.labels else [r.name if r.is_dir() else r.parent.name for r in args.runs]
    if len(labels) != len(args.runs):
        ap.error(f"--labels gives {len(labels)} names for {len(args.runs)} runs")
    runs = [(label, load(run)) for label, run in zip(labels, args.runs, strict=True)]
    common = min(max(r[args.x] for r in rows) for _, rows in runs)
    print(f"at {args.x} = {common:g} (the largest every run reached), interpolated in log {args.x}:")
    print("| metric | " + " | ".join(label for label, _ in runs) + " |")
    print("|---|" + "---|" * len(runs))
    for key, name, _ in METRICS:
        print(f"| {name} | " + " | ".join(f"{at(rows, key, args.x, common):.3f}" for _, rows in runs) + " |")
    ok, png = cv2.imencode(".png", cv2.cvtColor(plot(runs, args.x), cv2.COLOR_RGB2BGR))
    if not ok:
        raise SystemExit("could not encode the plot")
    atomic_write_bytes(args.out, png.tobytes())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
