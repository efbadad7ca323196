"""`facedouble faceset sort|stats`: curate a faceset."""

from __future__ import annotations

import argparse
import dataclasses
import json

from facedouble.config import StageConfig, add_config_args, config_from_args, show_defaults
from facedouble.errors import UsageError
from facedouble.faceset.metrics import METRICS
from facedouble.faceset.store import REJECTS_DIR


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `faceset` command group."""
    p = subparsers.add_parser("faceset", help="curate a faceset: sort, filter, statistics",
                              description="Sort and filter the faces of a faceset folder. Rejected faces are "
                              f"moved to {REJECTS_DIR}/<metric>/ inside it, never deleted.")
    sub = p.add_subparsers(dest="faceset_command", metavar="SUBCOMMAND", required=True)
    s = sub.add_parser("sort", help="rank faces by a metric and move rejects aside",
                       description="Metrics: blur (Laplacian variance, higher = sharper), yaw / pitch (degrees, "
                       "by magnitude), brightness (mean luma), histogram (similarity to the set's mean colour), "
                       "identity (distance to --reference or the set's median embedding).")
    s.add_argument("faceset")
    add_config_args(s, "sort")
    add_config_flags(s)
    s.add_argument("--dry-run", action="store_true", help="print the ranking, move nothing")
    s.set_defaults(func=run_sort)
    t = sub.add_parser("stats", help="counts and metric percentiles")
    t.add_argument("faceset")
    t.add_argument("--json", action="store_true", help="machine-readable output")
    t.set_defaults(func=run_stats)


@dataclasses.dataclass
class SortConfig:
    """Settings of `facedouble faceset sort` (TOML keys = these fields)."""

    by: str | None = None  # metric (required)
    minimum: float | None = None  # reject faces whose value is below this
    maximum: float | None = None  # reject faces whose value is above this
    reject_worst: float = 0.0  # reject the worst PCT percent
    reference: str | None = None  # image or faceset for --by identity
    show: int = 10  # print the N best and N worst

    def validate(self) -> SortConfig:
        """Raise a one-line UsageError for an impossible value; return self."""
        if self.by is None:
            raise UsageError(f"give --by METRIC ({', '.join(METRICS)})")
        if self.by not in METRICS:
            raise UsageError(f"unknown metric {self.by!r}; choose from {', '.join(METRICS)}")
        if not 0 <= self.reject_worst < 100:
            raise UsageError("--reject-worst is a percentage in [0, 100)")
        if self.show < 0:
            raise UsageError(f"--show must be >= 0, got {self.show}")
        return self


def add_config_flags(s: argparse.ArgumentParser) -> None:
    """The flags of SortConfig's settings (also used by `facedouble config show sort`)."""
    s.add_argument("--by", choices=list(METRICS), help="metric to sort by (required)")
    s.add_argument("--min", dest="minimum", type=float, help="reject faces whose value is below this")
    s.add_argument("--max", dest="maximum", type=float, help="reject faces whose value is above this")
    s.add_argument("--reject-worst", type=float, metavar="PCT", help="reject the worst PCT percent")
    s.add_argument("--reference", help="image or faceset for --by identity")
    s.add_argument("--show", type=int, help="print the N best and N worst")
    show_defaults(s, SortConfig())


def effective(args: argparse.Namespace) -> dict:
    """The sort settings this command line gives, validated."""
    return {"": config_from_args(SortConfig, args)}


CONFIG = StageConfig("sort", add_config_flags, effective, "faceset sort settings (SortConfig)")


def run_sort(args: argparse.Namespace) -> int:
    """Sort/filter and print the result."""
    from facedouble import api

    cfg = config_from_args(SortConfig, args)
    result = api.sort_faceset(args.faceset, cfg.by, minimum=cfg.minimum, maximum=cfg.maximum,
                              reject_worst=cfg.reject_worst, reference=cfg.reference, dry_run=args.dry_run)
    rows = result.ranked
    shown = rows if len(rows) <= 2 * cfg.show else rows[: cfg.show] + [None] + rows[-cfg.show:]
    for row in shown:
        print("   ..." if row is None else f"{row[1]:10.3f}  {row[0].name}")
    verb = "would move" if args.dry_run else "moved"
    print(f"{len(rows)} faces ranked by {cfg.by} (best first); {verb} {len(result.rejected)} to "
          f"{REJECTS_DIR}/{cfg.by}/")
    return 0


def run_stats(args: argparse.Namespace) -> int:
    """Print faceset statistics."""
    from facedouble import api

    stats = api.faceset_stats(args.faceset)
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    for key, value in stats.items():
        print(f"{key:15s} {value}")
    return 0
