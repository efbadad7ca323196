"""`facedouble mask label import|export`: move hand-drawn mask labels between a faceset and one JSON file."""

from __future__ import annotations

import argparse

from facedouble.mask.labelfile import export_labels, import_labels


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `mask` command group."""
    p = subparsers.add_parser("mask", help="occlusion-aware masks: labels, a trainable face segmenter",
                              description="Mask labels are include/exclude polygons in aligned-face pixels, "
                              "stored inside each face image, so they move with the file.")
    sub = p.add_subparsers(dest="mask_command", metavar="SUBCOMMAND", required=True)
    label = sub.add_parser("label", help="import or export labels as JSON")
    lsub = label.add_subparsers(dest="label_command", metavar="ACTION", required=True)
    e = lsub.add_parser("export", help="write every labelled face's labels to FILE.json")
    e.add_argument("faceset")
    e.add_argument("file")
    e.set_defaults(func=run_export)
    i = lsub.add_parser("import", help="store labels from FILE.json in the faces (all validated first)",
                        description='FILE.json: {"format": "facedouble.labels", "faces": {"<face file name>": '
                        '{"include": [[[x, y], ...], ...], "exclude": [...]} or null to clear}}.')
    i.add_argument("faceset")
    i.add_argument("file")
    i.set_defaults(func=run_import)
    from facedouble.cli.mask_segmenter import register_segmenter

    register_segmenter(sub)


def run_export(args: argparse.Namespace) -> int:
    """CLI: export."""
    n = export_labels(args.faceset, args.file)
    print(f"exported labels of {n} face(s) to {args.file}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    """CLI: import."""
    n = import_labels(args.faceset, args.file)
    print(f"imported labels into {n} face(s)")
    return 0
