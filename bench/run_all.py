"""Run every benchmark and collect their Markdown tables into bench/RESULTS.md.

Usage: python -m bench.run_all [--only extract,train,...]. Each benchmark is a module bench/<name>.py
that prints Markdown; they run one after another (never in parallel, so they do not disturb each
other's timings) in fresh processes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import ROOT, machine

ORDER = ("extract", "train", "merge", "trust")


def main() -> None:
    """Run the benchmarks and write bench/RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", help="comma-separated subset of " + ",".join(ORDER))
    parser.add_argument("--out", default=str(ROOT / "bench" / "RESULTS.md"))
    args = parser.parse_args()
    names = [n for n in (args.only.split(",") if args.only else ORDER) if (ROOT / "bench" / f"{n}.py").exists()]
    sections = [f"# Benchmark results\n\n{machine()}; {os.cpu_count()} cores; {time.strftime('%Y-%m-%d %H:%M')}.\n"]
    failed = []
    for name in names:
        print(f"== bench.{name}", flush=True)
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", f"bench.{name}"], cwd=ROOT, capture_output=True, text=True)
        minutes = (time.perf_counter() - start) / 60
        print(proc.stdout, flush=True)
        if proc.returncode:
            failed.append(name)
            sections.append(f"## {name}\n\nfailed (exit {proc.returncode}):\n\n```\n{proc.stderr[-2000:]}\n```\n")
        else:
            sections.append(f"## {name}\n\n{proc.stdout.strip()}\n\n({minutes:.1f} min)\n")
    Path(args.out).write_text("\n".join(sections), encoding="utf-8")
    print(f"wrote {args.out}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
