"""`facedouble studio` as the user runs it: prints the one-time URL, serves on 127.0.0.1 only."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def test_studio_command_prints_a_working_url_and_binds_loopback(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-P", "-m", "facedouble", "studio", str(tmp_path), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines = [proc.stdout.readline() for _ in range(2)]
        url = lines[1].split("open: ", 1)[1].strip()
        assert url.startswith(f"http://127.0.0.1:{port}/?token=")
        deadline = time.monotonic() + 30
        while True:
            try:
                with httpx.Client() as client:
                    r = client.get(url, follow_redirects=True)
                    assert r.status_code == 200 and "facedouble studio" in r.text
                    assert client.get(f"http://127.0.0.1:{port}/api/workspace").json()["clips"] == []
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        listening = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
        local = {row[1] for row in listening if row[3] == "0A"}  # state LISTEN
        assert f"0100007F:{port:04X}" in local and f"00000000:{port:04X}" not in local
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(15)
