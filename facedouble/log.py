"""The one logging setup: plain messages on stderr, `-v` for debug."""

import contextlib
import logging
import os
import sys
from collections.abc import Iterator


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


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Silence C++ libraries that write straight to file descriptor 2 (MediaPipe/TFLite start-up chatter)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
