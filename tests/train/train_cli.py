"""`facedouble` with only the train stage registered, for subprocess tests (also under torchrun).

The real entry point imports every stage; in a worktree whose venv has another checkout installed
in editable mode, half-finished stages from that checkout can leak in. The train tests exercise
`facedouble.cli.main` itself (error handling, exit codes) with just the train stage.
"""

from __future__ import annotations

import sys

import facedouble.cli as cli

ONLY_TRAIN = ("facedouble.cli.train",)


def main(argv: list[str]) -> int:
    """Run `facedouble ARGV` with only the train stage's subcommands."""
    saved, cli.STAGE_MODULES = cli.STAGE_MODULES, ONLY_TRAIN
    try:
        return cli.main(argv)
    finally:  # in-process callers (tests) must not see a changed CLI afterwards
        cli.STAGE_MODULES = saved


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
