"""Run the `facedouble` CLI; used by tests as a script (also under torchrun).

Falls back to a parser holding only the train stage's subcommands while other stages' packages
are missing on this branch (facedouble.cli raises on a missing stage package).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str]) -> int:
    """Parse `argv` like `facedouble` and run it; returns the exit code."""
    from facedouble.errors import FacedoubleError

    try:
        from facedouble import cli

        cli.build_parser()
        return cli.main(list(argv))
    except ModuleNotFoundError:
        pass
    from facedouble.log import setup_logging
    from facedouble.train.cli import register

    parser = argparse.ArgumentParser(prog="facedouble")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    setup_logging()
    try:
        return int(args.func(args) or 0)
    except FacedoubleError as exc:
        print(f"facedouble {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
