"""Run the studio app on a free loopback port in a background thread (for benchmarks, tests and embedding)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from facedouble.errors import InternalError


@contextlib.contextmanager
def serve_in_thread(workspace: str | Path, token: str, *, start_timeout_s: float = 20.0) -> Iterator[str]:
    """Serve `create_app(workspace, token)` with uvicorn on 127.0.0.1 and a free port; yield its base URL
    and stop the server when the block ends."""
    import uvicorn

    from facedouble.studio.app import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(Path(workspace), token), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise InternalError(f"the studio server did not start on port {port}")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
