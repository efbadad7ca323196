"""`facedouble` command line: one subcommand per pipeline stage.

Each stage module exposes `register(subparsers)`, which adds its parser and sets `func` to the
function that runs it. Errors the user can fix end in one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from facedouble.runtime import tune_process

# Before any stage imports torch: libgomp reads its spin count once, when torch loads (see facedouble.runtime).
tune_process()

from facedouble import __version__  # noqa: E402 (after tune_process, on purpose)
from facedouble.errors import FacedoubleError  # noqa: E402
from facedouble.log import get_logger, setup_logging  # noqa: E402

# Stage modules, in pipeline order. Each has a `register(subparsers)` function.
STAGE_MODULES = (
    "facedouble.extract.cli",
    "facedouble.faceset.cli",
    "facedouble.mask.cli",
    "facedouble.trust.cli",
    "facedouble.train.cli",
    "facedouble.merge.cli",
    "facedouble.report.cli",
    "facedouble.farm.cli",
    "facedouble.studio.cli",
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
