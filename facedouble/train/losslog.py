"""The loss history of a model: the whole curve in loss.csv, a bounded tail in the checkpoint.

A model trained for weeks runs millions of iterations; rewriting the whole curve into every checkpoint's
state.json would grow it without bound. So each save appends the new rows to loss.csv (before the
checkpoint is published) and the checkpoint keeps only the last `STATE_TAIL` rows, for `model info`.
On resume the CSV is cut back to the checkpoint's iteration, dropping rows of a session that crashed
after appending but before its checkpoint was published, and a torn last line from a kill -9.
"""

from __future__ import annotations

import os
from pathlib import Path

from facedouble.io.atomic import atomic_write_text

HEADER = "iteration,src_loss,dst_loss"
CSV_NAME = "loss.csv"
STATE_TAIL = 1000


def _parse(line: str) -> list[float] | None:
    parts = line.strip().split(",")
    if len(parts) != 3:
        return None
    try:
        return [int(parts[0]), float(parts[1]), float(parts[2])]
    except ValueError:
        return None


def _row(entry: list[float]) -> str:
    return f"{int(entry[0])},{entry[1]:.6f},{entry[2]:.6f}\n"


class LossLog:
    """Loss rows [iteration, src, dst]; `path` None (DDP ranks other than 0) keeps them in memory only."""

    def __init__(self, model_dir: Path | None, tail: list[list[float]], iteration: int):
        self.tail = [list(h) for h in tail][-STATE_TAIL:]
        self._unsaved: list[list[float]] = []
        self.path = None if model_dir is None else Path(model_dir) / CSV_NAME
        if self.path is not None:
            self._reconcile(iteration)

    def _reconcile(self, iteration: int) -> None:
        """Make loss.csv hold exactly the rows up to `iteration` (the checkpoint being resumed)."""
        rows: list[list[float]] = []
        if self.path.exists():
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
            for line in lines[1:]:
                entry = _parse(line)
                if entry is None or entry[0] > iteration:
                    break  # a torn line or rows after the checkpoint: cut here
                rows.append(entry)
            if lines and lines[0] == HEADER and len(rows) == len(lines) - 1 and \
                    (not self.tail or (rows and rows[-1][0] >= self.tail[-1][0])):
                return  # already exact
        # rows the CSV lacks but the checkpoint's tail has (a folder from before loss.csv was appended)
        last = rows[-1][0] if rows else 0
        rows += [h for h in self.tail if h[0] > last]
        atomic_write_text(self.path, HEADER + "\n" + "".join(_row(r) for r in rows))

    def add(self, iteration: int, src: float, dst: float) -> None:
        """Record one iteration's losses."""
        entry = [iteration, round(src, 6), round(dst, 6)]
        self.tail.append(entry)
        self._unsaved.append(entry)
        if len(self.tail) > 2 * STATE_TAIL:  # trim in steps, not on every iteration
            del self.tail[:-STATE_TAIL]

    @property
    def last(self) -> list[float] | None:
        """The newest row, or None before the first iteration."""
        return self.tail[-1] if self.tail else None

    def state_tail(self) -> list[list[float]]:
        """The rows a checkpoint keeps."""
        return self.tail[-STATE_TAIL:]

    def flush(self) -> None:
        """Append the rows since the last flush to loss.csv (durably: before the checkpoint publishes)."""
        if self.path is None or not self._unsaved:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("".join(_row(r) for r in self._unsaved))
            f.flush()
            os.fsync(f.fileno())
        self._unsaved.clear()
