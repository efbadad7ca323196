"""Fuzz campaign over every reader: `python -m bench.fuzz [--minutes 5] [--targets a,b] [--save DIR]`.

Runs each harness of tests/reliability/fuzz for an equal share of the time (coverage-guided mutation
from the committed seed corpus, one worker process, a time and memory limit per input) and prints, per
target: executions, inputs kept in the working corpus, line arcs of facedouble's code reached, distinct
paths (distinct arc sets), distinct documented errors, and findings (anything else), then the total.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.reliability.fuzz.harness import TARGETS  # noqa: E402
from tests.reliability.fuzz.runner import Worker, fuzz  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Run the campaign; exit status 1 when anything was found."""
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="total time, split over the targets")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated harness names")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", type=Path, help="write each finding's input here")
    args = parser.parse_args(argv)
    names = [n for n in args.targets.split(",") if n]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    share = args.minutes * 60 / len(names)
    print(f"fuzz campaign: {args.minutes:g} min over {len(names)} targets ({share:.0f} s each)")
    print(f"{'target':<12} {'execs':>8} {'exec/s':>7} {'corpus':>6} {'arcs':>6} {'paths':>6} {'errors':>6} "
          f"{'findings':>8}")
    worker = Worker()
    totals = [0, 0, 0, 0, 0, 0]
    found: dict[str, str] = {}
    try:
        for name in names:
            camp = fuzz(name, share, seed=args.seed, worker=worker)
            row = [camp.executions, camp.corpus, camp.arcs, len(camp.paths), len(camp.errors), len(camp.findings)]
            totals = [a + b for a, b in zip(totals, row, strict=True)]
            print(f"{name:<12} {row[0]:>8} {row[0] / camp.seconds:>7.0f} {row[1]:>6} {row[2]:>6} {row[3]:>6} "
                  f"{row[4]:>6} {row[5]:>8}", flush=True)
            for sig, data in camp.findings.items():
                found[f"{name}: {sig}"] = camp.examples.get(sig, "")
                if args.save:
                    args.save.mkdir(parents=True, exist_ok=True)
                    (args.save / f"{name}-{len(found):03d}.bin").write_bytes(data)
    finally:
        worker.close()
    print(f"{'total':<12} {totals[0]:>8} {'':>7} {totals[1]:>6} {totals[2]:>6} {totals[3]:>6} {totals[4]:>6} "
          f"{totals[5]:>8}")
    for sig, example in found.items():
        print(f"finding: {sig} ({example})")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
