"""The one logging setup: plain messages on stderr, `-v` for debug."""

import logging
import sys


def setup_logging(verbose: bool = False) -> None:
    """Configure the root logger once for the CLI."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname).1s %(name)s: %(message)s" if verbose else "%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)


def get_logger(name: str) -> logging.Logger:
    """Logger for a facedouble module."""
    return logging.getLogger(name)
