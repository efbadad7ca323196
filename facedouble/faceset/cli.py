"""`facedouble faceset sort|stats`: curate a faceset."""

from __future__ import annotations

import argparse
import json

from facedouble.faceset.curate import faceset_stats, sort_faceset
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
    s.add_argument("--by", required=True, choices=list(METRICS), help="metric to sort by")
    s.add_argument("--min", dest="minimum", type=float, help="reject faces whose value is below this")
    s.add_argument("--max", dest="maximum", type=float, help="reject faces whose value is above this")
    s.add_argument("--reject-worst", type=float, default=0.0, metavar="PCT", help="reject the worst PCT percent")
    s.add_argument("--reference", help="image or faceset for --by identity")
    s.add_argument("--dry-run", action="store_true", help="print the ranking, move nothing")
    s.add_argument("--show", type=int, default=10, help="print the N best and N worst (default 10)")
    s.set_defaults(func=run_sort)
    t = sub.add_parser("stats", help="counts and metric percentiles")
    t.add_argument("faceset")
    t.add_argument("--json", action="store_true", help="machine-readable output")
    t.set_defaults(func=run_stats)


def run_sort(args: argparse.Namespace) -> int:
    """Sort/filter and print the result."""
    result = sort_faceset(args.faceset, args.by, minimum=args.minimum, maximum=args.maximum,
                          reject_worst=args.reject_worst, reference=args.reference, dry_run=args.dry_run)
    rows = result.ranked
    shown = rows if len(rows) <= 2 * args.show else rows[: args.show] + [None] + rows[-args.show:]
    for row in shown:
        print("   ..." if row is None else f"{row[1]:10.3f}  {row[0].name}")
    verb = "would move" if args.dry_run else "moved"
    print(f"{len(rows)} faces ranked by {args.by} (best first); {verb} {len(result.rejected)} to "
          f"{REJECTS_DIR}/{args.by}/")
    return 0


def run_stats(args: argparse.Namespace) -> int:
    """Print faceset statistics."""
    stats = faceset_stats(args.faceset)
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    for key, value in stats.items():
        print(f"{key:15s} {value}")
    return 0
