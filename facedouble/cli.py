"""`facedouble` command line: one subcommand per pipeline stage.

Each stage module exposes `register(subparsers)`, which adds its parser and sets `func` to the
function that runs it. Errors the user can fix end in one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

# OpenMP worker threads (PyTorch's intra-op pool) spin for ~300,000 iterations before they sleep. When other
# jobs share the cores, a spinning thread holds a core its descheduled partner needs. Measured on 2 cores
# with one other busy process, quick96 training at batch 4 (bench.train, 2 threads): 4.83 s/iter by default,
# 3.80 with a 10,000 spin count, 3.85 fully passive, 9.4 spinning forever (ACTIVE); on the quiet machine the
# 10,000 spin count is within run-to-run noise of the default (1.8-2.4 s/iter both) while fully passive
# waiting costs ~15 %. libgomp reads this once, when torch loads, so it is set before any stage imports
# torch; the user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")

from facedouble import __version__
from facedouble.errors import FacedoubleError
from facedouble.log import get_logger, setup_logging

# Stage modules, in pipeline order. Each has a `register(subparsers)` function.
STAGE_MODULES = (
    "facedouble.extract.cli",
    "facedouble.faceset.cli",
    "facedouble.mask.cli",
    "facedouble.trust.cli",
    "facedouble.train.cli",
    "facedouble.merge.cli",
    "facedouble.report.cli",
    "facedouble.demo",
)

log = get_logger("facedouble")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every stage that is installed."""
    parser = argparse.ArgumentParser(
        prog="facedouble",
        description="Face replacement for film and video work: extract, curate, train, merge, verify. "
        "Every render is marked as synthetic (C2PA manifest, invisible watermark, render record).",
    )
    parser.add_argument("--version", action="version", version=f"facedouble {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in STAGE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and (name == exc.name or name.startswith(exc.name + ".")):  # stage not built yet
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `facedouble` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except FacedoubleError as exc:
        if args.verbose:
            raise
        print(f"facedouble {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"facedouble {args.command}: interrupted; finished work is kept, re-run to resume",
              file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
