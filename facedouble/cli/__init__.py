"""`facedouble` command line: one subcommand per pipeline stage.

Each stage module exposes `register(subparsers)`, which adds its parser and sets `func` to the
function that runs it. Errors the user can fix end in one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
from collections.abc import Sequence

from facedouble.runtime import tune_process

# Before any stage imports torch: libgomp reads its spin count once, when torch loads (see facedouble.runtime).
tune_process()

from facedouble import __version__  # noqa: E402 (after tune_process, on purpose)
from facedouble.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE, FacedoubleError  # noqa: E402
from facedouble.log import get_logger, setup_logging  # noqa: E402

# Stage modules, in pipeline order. Each has a `register(subparsers)` function.
STAGE_MODULES = (
    "facedouble.cli.extract",
    "facedouble.cli.faceset",
    "facedouble.cli.mask",
    "facedouble.cli.trust",
    "facedouble.cli.train",
    "facedouble.cli.merge",
    "facedouble.cli.report",
    "facedouble.cli.farm",
    "facedouble.cli.studio",
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
    stages = []
    for name in STAGE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and (name == exc.name or name.startswith(exc.name + ".")):  # stage not built yet
                continue
            raise
        module.register(subparsers)
        if getattr(module, "CONFIG", None) is not None:
            stages.append(module.CONFIG)
    _register_config(subparsers, stages)
    return parser


def _register_config(subparsers: argparse._SubParsersAction, stages: list) -> None:
    """`facedouble config show STAGE [--config FILE] [--set K=V] [flags]`: the effective settings as TOML."""
    from facedouble.config import add_config_args

    p = subparsers.add_parser("config", help="show a stage's effective settings (TOML)",
                              description="Every stage loads its settings the same way: dataclass defaults, "
                              "then --config FILE (TOML), then --set KEY=VALUE, then its flags.")
    sub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = sub.add_parser("show", help="print the settings a stage would run with, as TOML --config reads back")
    ssub = show.add_subparsers(dest="stage", metavar="STAGE", required=True)
    for stage in stages:
        s = ssub.add_parser(stage.name, help=stage.help)
        add_config_args(s, stage.name)
        stage.add_flags(s)
        s.set_defaults(func=_config_show, stage_config=stage)


def _config_show(args: argparse.Namespace) -> int:
    from facedouble.config import to_toml

    text = to_toml(args.stage_config.effective(args))  # errors before any output
    order = f"defaults < {args.config} < --set < flags" if args.config else "defaults < --set < flags"
    print(f"# facedouble {args.stage}: effective settings ({order})")
    print(text, end="")
    return 0


def catch_ctrl_c() -> None:
    """Make SIGINT mean "stop and keep finished work" even where the process inherited it ignored.

    A background job of a shell script (`facedouble train ... &`) starts with SIGINT ignored, and Python then
    installs no KeyboardInterrupt handler; `api.train_stop` and the studio's cancel both
    stop a run with SIGINT, so such a run would ignore them and, at the studio's grace limit, be terminated
    without its last checkpoint. Ctrl-C is how every command stops cleanly, so it is always caught.
    """
    if threading.current_thread() is threading.main_thread():  # signal handlers can only be set there
        signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `facedouble` console script."""
    catch_ctrl_c()
    try:
        parser = build_parser()
    except KeyboardInterrupt:  # Ctrl-C while the stages load: nothing started, nothing to keep
        return EXIT_INTERRUPTED
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
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
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug or a crash below us: one line and its own code, never 1 (verify's "unmarked")
        if args.verbose:
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"facedouble {args.command}: internal error: {type(exc).__name__}: {first} (run with -v for the "
              "traceback)", file=sys.stderr)
        return EXIT_INTERNAL
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
