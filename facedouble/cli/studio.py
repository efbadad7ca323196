"""`facedouble studio [WORKSPACE]`: start the local web studio and print its one-time URL."""

from __future__ import annotations

import argparse
import ipaddress
import os
from pathlib import Path

from facedouble.errors import FacedoubleError, InputError
from facedouble.studio.security import LOOPBACK_HOSTS, new_token


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `studio` subcommand."""
    p = subparsers.add_parser("studio", help="local web app: workspace, faceset gallery, jobs",
                              description="Serve the studio for WORKSPACE on 127.0.0.1 and print the URL to open.")
    p.add_argument("workspace", nargs="?", default=".", help="workspace folder (default: current folder)")
    p.add_argument("--port", type=int, default=8765, help="TCP port (default 8765)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need --token-file)")
    p.add_argument("--token-file", help="file holding the session token (created 0600 if missing)")
    p.set_defaults(func=run)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_token(host: str, token_file: str | None) -> str:
    """The session token: from --token-file, else fresh; refuses a non-loopback bind without a token file."""
    if not is_loopback(host) and not token_file:
        raise FacedoubleError(f"--host {host} exposes the studio beyond this machine; also give --token-file")
    if not token_file:
        return new_token()
    path = Path(token_file)
    if path.is_file():
        token = path.read_text().strip()
        if len(token) < 16:
            raise InputError(f"token in {path} is shorter than 16 characters")
        return token
    token = new_token()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token


def run(args: argparse.Namespace) -> int:
    """Start uvicorn with the studio app; blocks until Ctrl-C."""
    import uvicorn

    from facedouble.studio.app import create_app

    token = resolve_token(args.host, args.token_file)
    hosts = LOOPBACK_HOSTS if is_loopback(args.host) else (*LOOPBACK_HOSTS, args.host.lower())
    # the printed URL opens one session; a --token-file token is the user's own secret and stays reusable
    app = create_app(Path(args.workspace), token, allowed_hosts=hosts, single_use=not args.token_file)
    shown = "127.0.0.1" if args.host in ("127.0.0.1", "localhost") else args.host
    print(f"facedouble studio for {Path(args.workspace).resolve()}\n"
          f"open: http://{shown}:{args.port}/?token={token}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
