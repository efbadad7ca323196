"""The one progress mechanism: stages report `Progress` events to a callback.

The API (`facedouble.api`) takes `progress=` callbacks; the CLI renders the events as tqdm bars
(`TqdmBars`), the studio can stream them to the browser (each event is a small JSON-able dict via
`Progress.to_dict`). A callback must be quick and must not raise: it runs on the stage's own thread.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from facedouble.log import get_logger

log = get_logger("facedouble.progress")


@dataclasses.dataclass(frozen=True)
class Progress:
    """One progress report of a stage."""

    stage: str  # extract | train | merge | report | verify ...
    done: int  # units done so far (frames, iterations)
    total: int | None = None  # units in all, when known
    unit: str = "it"
    message: str = ""  # short status text ("iter 120 src 0.0412 dst 0.0398")
    finished: bool = False  # the last event of this stage's run
    info: dict[str, Any] = dataclasses.field(default_factory=dict)  # e.g. {"loss_src": 0.04}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able view (for the studio's event stream)."""
        return dataclasses.asdict(self)


ProgressCallback = Callable[[Progress], None]


def report(callback: ProgressCallback | None, event: Progress) -> None:
    """Send `event` to `callback` (if any); a failing callback is logged once per event, never raised."""
    if callback is None:
        return
    try:
        callback(event)
    except Exception as exc:  # noqa: BLE001 - a display problem must not stop a render or a training run
        log.debug("progress callback failed: %s", exc)


class TqdmBars:
    """A progress callback that draws one tqdm bar per stage on stderr (the CLI's renderer)."""

    def __init__(self, disable: bool = False):
        self.disable = disable
        self._bars: dict[str, Any] = {}

    def __call__(self, event: Progress) -> None:
        """Update (or open, or close) the bar of `event.stage`."""
        from tqdm import tqdm

        bar = self._bars.get(event.stage)
        if bar is None:
            bar = tqdm(total=event.total, unit=event.unit, desc=event.stage, disable=self.disable,
                       dynamic_ncols=True, initial=0)
            self._bars[event.stage] = bar
        if event.total is not None and bar.total != event.total:
            bar.total = event.total
        if event.message:
            bar.set_postfix_str(event.message, refresh=False)
        bar.update(event.done - bar.n)  # tqdm redraws at most every mininterval, however often this is called
        if event.finished:
            bar.close()
            del self._bars[event.stage]

    def close(self) -> None:
        """Close every open bar."""
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()
