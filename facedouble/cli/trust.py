"""CLI for the trust layer: `identity`, `certs`, `verify`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from facedouble.config import add_workspace_arg, retire_flag
from facedouble.consent import records as consent


def _workspace(args) -> Path:
    return Path(args.workspace) if args.workspace else consent.default_workspace()


def _identity_add(args) -> int:
    record = consent.add_identity(_workspace(args), args.name, Path(args.release), scope=args.scope or "",
                                  expires=args.expires, notes=args.notes or "",
                                  reference=Path(args.reference))
    print(f"added identity {record.name} (record sha256 {record.record_hash})")
    return 0


def _identity_list(args) -> int:
    for record in consent.list_identities(_workspace(args)):
        withdrawn = consent.revocation(_workspace(args), record.name)
        state = "withdrawn" if withdrawn else "expired" if record.expired() else "valid"
        print(f"{record.name}\t{state}\texpires {record.expires or 'never'}\t{record.scope}")
    return 0


def _identity_show(args) -> int:
    record = consent.load_identity(_workspace(args), args.name)
    print(json.dumps(record.to_dict() | {"record_hash": record.record_hash}, indent=2, sort_keys=True))
    return 0


def _identity_bind(args) -> int:
    record = consent.bind_faceset(_workspace(args), args.name, Path(args.faceset))
    print(f"bound {args.faceset} to identity {record.name}")
    return 0


def _identity_revoke(args) -> int:
    entry = consent.revoke_identity(_workspace(args), args.name, reason=args.reason or "")
    print(f"withdrew the consent of {entry['name']} on {entry['revoked']}: no render, preview, training or "
          "binding uses it from now on")
    return 0


def _certs_init(args) -> int:
    from facedouble import api

    cert, key = api.certs_init(args.workspace, args.out)
    print(f"test CA written: certificate {cert}, key {key} (for trying signing out only; not trusted)")
    return 0


def _verify(args) -> int:
    from facedouble import api
    from facedouble.trust.verify import format_report

    report = api.verify(args.file, key_file=args.watermark_key, trust_anchors=args.trust_anchors,
                        workspace=args.workspace)
    print(json.dumps(report, indent=2, sort_keys=True) if args.json else format_report(report))
    return report["exit_code"]


def register(subparsers) -> None:
    """Add the `identity`, `certs` and `verify` subcommands."""
    workspace = argparse.ArgumentParser(add_help=False)
    add_workspace_arg(workspace)

    identity = subparsers.add_parser("identity", help="consent records of performers")
    isub = identity.add_subparsers(dest="identity_command", metavar="ACTION", required=True)
    add = isub.add_parser("add", parents=[workspace], help="record a performer's signed release")
    add.add_argument("name")
    add.add_argument("--release", required=True, help="the signed release document (its SHA-256 is stored)")
    add.add_argument("--scope", help="what the consent covers, free text")
    add.add_argument("--expires", help="last valid day, YYYY-MM-DD")
    add.add_argument("--notes")
    add.add_argument("--reference", metavar="PATH", required=True, help="faces of the person who signed, from "
                     "the release session (faceset, clip, image or folder): facesets bound to the record must "
                     "show them")
    add.set_defaults(func=_identity_add)
    lst = isub.add_parser("list", parents=[workspace], help="list consent records")
    lst.set_defaults(func=_identity_list)
    show = isub.add_parser("show", parents=[workspace], help="show one consent record")
    show.add_argument("name")
    show.set_defaults(func=_identity_show)
    bind = isub.add_parser("bind", parents=[workspace], help="bind a faceset folder to a consent record")
    bind.add_argument("name")
    bind.add_argument("faceset")
    bind.set_defaults(func=_identity_bind)
    revoke = isub.add_parser("revoke", parents=[workspace], help="withdraw a performer's consent (takes effect "
                             "at the next render, preview or training session)")
    revoke.add_argument("name")
    revoke.add_argument("--reason", help="why, free text (kept in the withdrawal file)")
    revoke.set_defaults(func=_identity_revoke)

    certs = subparsers.add_parser("certs", help="signing certificates")
    csub = certs.add_subparsers(dest="certs_command", metavar="ACTION", required=True)
    init = csub.add_parser("init", parents=[workspace], help="make a local test CA and signing certificate (ES256) "
                           "in WORKSPACE/certs, where merge looks for it")
    init.add_argument("--out", help="folder for the keys instead (default WORKSPACE/certs)")
    init.set_defaults(func=_certs_init)

    from facedouble.trust.verify import __doc__ as verify_doc

    verify = subparsers.add_parser("verify", help="check a video, image or image sequence (its folder or a frame) "
                                   "for facedouble marks",
                                   description=verify_doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    verify.add_argument("file", help="video, image, or image sequence folder (EXR/DPX/...) or one of its frames")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.add_argument("--watermark-key", metavar="FILE",
                        help="watermark key file (default: the workspace's keys/watermark.key)")
    retire_flag(verify, "--key", "--watermark-key", "merge's --key is the C2PA signing key")
    verify.add_argument("--trust-anchors", metavar="PEM", help="trusted root certificates for the C2PA signer "
                        "(default: the workspace's trust-anchors.pem, if any)")
    add_workspace_arg(verify)
    verify.set_defaults(func=_verify)
