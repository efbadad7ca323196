"""Studio gallery benchmark: first page and next page at 10,000 faces, over HTTP on 127.0.0.1.

Run: python -m bench.studio [--faces 10000] [--repeats 5] [--visible 60]

Served by uvicorn on 127.0.0.1 and fetched with one keep-alive httpx client, one request after another (a
browser fetches ~6 thumbnails at once, so it sees less than this).

A GRID clip is extracted (every 15th frame, 64 px) and the faceset is blown up to N faces with symlinks, so
listing and paging see N files while thumbnails decode real face PNGs. One "page" is what the grid does when
it shows a screen: the page API (200 names) plus the thumbnails of the visible cells. Cold = thumbnail cache
emptied before each repeat (first visit); warm = served from WORKSPACE/.studio/thumbs. Median of repeats.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench.common import grid_clips, machine

TOKEN = "bench-token-0123456789abcdef"


def _screen(client, offset: int, visible: int) -> float:
    t = time.perf_counter()
    faces = client.get("/api/faceset/page", params={"faceset": "big", "offset": offset, "limit": 200}).json()["faces"]
    for face in faces[:visible]:
        r = client.get("/api/faceset/thumb", params={"faceset": "big", "name": face["name"]})
        assert r.status_code == 200
    return time.perf_counter() - t


def main() -> None:
    """Print first/next page times, cold and warm."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--visible", type=int, default=60, help="thumbnails on one screen")
    args = ap.parse_args()
    import httpx
    import uvicorn

    from facedouble.extract.pipeline import ExtractConfig, extract
    from facedouble.studio.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        real = ws / "real"
        extract(grid_clips()[0], real, ExtractConfig(size=64, every_nth=15, progress=False))
        src = sorted(real.glob("*.png"))
        big = ws / "big"
        big.mkdir()
        for i in range(args.faces):
            (big / f"f{i:06d}.png").symlink_to(src[i % len(src)])
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(create_app(ws, TOKEN), host="127.0.0.1", port=port,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}")
        client.get(f"/?token={TOKEN}")
        rows = []
        for label, offset in (("first page", 0), ("next page", 200)):
            cold, warm = [], []
            for _ in range(args.repeats):
                shutil.rmtree(ws / ".studio" / "thumbs", ignore_errors=True)
                cold.append(_screen(client, offset, args.visible))
                warm.append(_screen(client, offset, args.visible))
            rows.append((label, statistics.median(cold), statistics.median(warm)))
        t = time.perf_counter()
        for _ in range(args.repeats):
            client.get("/api/faceset/page", params={"faceset": "big", "offset": 5000, "limit": 200})
        api_only = (time.perf_counter() - t) / args.repeats
        client.close()
        server.should_exit = True
        thread.join(10)
    print(f"# studio gallery, {machine()}; {args.faces} faces, {args.visible} thumbnails per screen, "
          f"median of {args.repeats}")
    print(f"{'screen':12s} {'cold ms':>8s} {'warm ms':>8s}")
    for label, c, w in rows:
        print(f"{label:12s} {c * 1000:8.0f} {w * 1000:8.0f}")
    print(f"page API alone (200 names of {args.faces}): {api_only * 1000:.1f} ms")


if __name__ == "__main__":
    main()
