"""Studio benchmarks: gallery first/next page at 10,000 faces, and the merge tuning preview at 720p.

Run: python -m bench.studio [--faces 10000] [--repeats 5] [--visible 60] [--only gallery|preview]

Preview: a GRID clip upscaled to 1280x720 (letterboxed, H.264), its faceset (64 px), and a saehd-df-128
model with its initial weights (costs what a trained one does), consent recorded and sealed in the bench
workspace, so the preview takes the whole trust path (`trust.render.render_preview`: consent check, guard,
watermark, label) and comes back as a PNG over HTTP. Cold = the first preview (model load and shot plan);
warm = later frames and settings (the artist scrubbing or changing the colour mode), median of repeats.

Served by uvicorn on 127.0.0.1 and fetched with one keep-alive httpx client, one request after another (a
browser fetches ~6 thumbnails at once, so it sees less than this). The server runs in this process, so the
process CPU time per request (both cores) is printed beside the wall time: on shared cores the wall time
grows with the other jobs' load, the CPU time much less.

Sort: the first sort of the 10,000 faces by a metric (blur) is scored in the server's scoring thread: the
time of the first answer (in name order, with progress), a page request and a thumbnail answered while it
scores, and the time until the sorted page comes back.

A GRID clip is extracted (every 15th frame, 64 px) and the faceset is blown up to N faces with symlinks, so
listing and paging see N files while thumbnails decode real face PNGs. One "page" is what the grid does when
it shows a screen: the page API (200 names) plus the thumbnails of the visible cells. Cold = thumbnail cache
emptied before each repeat (first visit); warm = served from WORKSPACE/.studio/thumbs. Median of repeats.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
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


def consented_model(ws: Path, preset_name: str) -> Path:
    """A model folder of `preset_name` (initial weights) whose consent record lives in `ws`, sealed as train seals."""
    import torch

    from facedouble.config import to_dict
    from facedouble.consent.records import add_identity
    from facedouble.nn import checkpoint as ck
    from facedouble.train.models.presets import build_model, preset
    from facedouble.train.trainer import seal_consent

    release = ws / "release.txt"
    release.write_text("bench release\n")
    record = add_identity(ws, "bench-performer", release)
    consent = {"name": "bench-performer", "record_hash": record.record_hash}
    torch.manual_seed(0)
    cfg = preset(preset_name)
    folder = ws / "models" / preset_name
    ck.save_checkpoint(folder, build_model(cfg).state_dict(), {}, {"model": to_dict(cfg), "iteration": 0,
                                                                  "consent": consent})
    ckpt, files = ck.checkpoint_dir(folder)
    seal_consent(ckpt, consent, files[ck.WEIGHTS], ws)
    return folder


def preview_bench(repeats: int) -> None:
    """Print the 720p merge preview latency over HTTP (cold, warm scrub, warm colour change)."""
    import httpx

    from bench.common import upscaled_clip
    from facedouble.extract.pipeline import ExtractConfig, extract
    from facedouble.merge.overrides import FaceSettings
    from facedouble.studio.server import serve_in_thread

    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        (ws / "clips").mkdir()
        clip = upscaled_clip(grid_clips()[0], ws / "clips" / "grid_720p.mp4", (1280, 720))
        extract(clip, ws / "facesets" / "t", ExtractConfig(size=64, progress=False))
        consented_model(ws, "saehd-df-128")
        with serve_in_thread(ws, TOKEN) as url:
            client = httpx.Client(base_url=url, timeout=120)
            client.get(f"/?token={TOKEN}")
            q = {"model": "models/saehd-df-128", "faceset": "facesets/t"}

            cpu: list[float] = []

            def one(frame: int, colour: str, **extra: str) -> float:
                t, c = time.perf_counter(), time.process_time()
                r = client.get("/api/merge/preview", params={**q, "frame": frame, "colour": colour, **extra})
                assert r.status_code == 200, r.text
                cpu.append(time.process_time() - c)
                return time.perf_counter() - t

            cold = one(5, "rct")
            scrub = [one(10 + 7 * i, "rct") for i in range(repeats)]  # 7 frames on: the decoder goes on
            jump = [one(60 - 9 * i, "rct") for i in range(repeats)]  # backwards: a seek each time
            colours = ["lct", "mkl", "none", "sot", "rct"]
            colour = [one(10, colours[i % len(colours)]) for i in range(repeats)]
            warm_cpu = cpu[1:]
            hull = [one(10 + i, "rct", mask="hull") for i in range(repeats + 1)][1:]  # first: a new render config
            client.close()
            hull_cpu = cpu[-repeats:]
    default_mask = FaceSettings().mask
    print(f"# studio merge preview, {machine()}; 1280x720 H.264 GRID upscale, saehd-df-128 (128 px), "
          f"marked (consent, guard, watermark, label), PNG over HTTP, median of {repeats}; "
          f"load average before: {_load()}")
    print(f"first preview (loads model + plan)  {cold * 1000:6.0f} ms")
    print(f"(merge's default mask: {default_mask})")
    for label, runs in (("scrub 7 frames on", scrub), ("jump back (seek)", jump), ("change the colour mode", colour),
                        ("scrub 1 frame on, mask hull", hull)):
        print(f"{label:35s} {statistics.median(runs) * 1000:6.0f} ms  (min {min(runs) * 1000:.0f}, "
              f"max {max(runs) * 1000:.0f})")
    print(f"process CPU per warm preview        {statistics.median(warm_cpu) * 1000:6.0f} ms  "
          f"(min {min(warm_cpu) * 1000:.0f}; both cores together); mask hull "
          f"{statistics.median(hull_cpu) * 1000:.0f} ms (min {min(hull_cpu) * 1000:.0f})")
    print(f"target <= 1000 ms: scrub {statistics.median(scrub):.2f}x, colour {statistics.median(colour):.2f}x of it")


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def sort_bench(client, faces: int) -> str:
    """The first sort of the big faceset: first answer, requests answered meanwhile, time to sorted."""
    params = {"faceset": "big", "sort": "blur", "limit": 200}
    t0 = time.perf_counter()
    first = client.get("/api/faceset/page", params=params).json()
    answered = time.perf_counter() - t0
    during, thumb = [], []
    while True:
        t = time.perf_counter()
        r = client.get("/api/faceset/page", params={**params, "offset": 400}).json()
        during.append(time.perf_counter() - t)
        t = time.perf_counter()
        client.get("/api/faceset/thumb", params={"faceset": "big", "name": f"f{len(thumb) * 37 % faces:06d}.png"})
        thumb.append(time.perf_counter() - t)
        if not r["scoring"]:
            break
        time.sleep(r["poll_s"])
    total = time.perf_counter() - t0
    return (f"first sort by blur of {faces} faces: first answer {answered * 1000:.0f} ms "
          f"(scoring {first['scoring']['done']}/{first['scoring']['total']}), sorted after {total:.1f} s; "
          f"meanwhile a page took {statistics.median(during) * 1000:.0f} ms (max {max(during) * 1000:.0f}) and a "
          f"new thumbnail {statistics.median(thumb) * 1000:.0f} ms (max {max(thumb) * 1000:.0f}), "
          f"{len(during)} of each")


def main() -> None:
    """Print first/next page times, cold and warm, and the preview latency."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--visible", type=int, default=60, help="thumbnails on one screen")
    ap.add_argument("--only", choices=["gallery", "preview"], help="run one of the two benchmarks")
    ap.add_argument("--no-sort", action="store_true", help="gallery: skip the first-sort benchmark")
    args = ap.parse_args()
    if args.only != "gallery":
        preview_bench(args.repeats)
    if args.only == "preview":
        return
    import httpx

    from facedouble.extract.pipeline import ExtractConfig, extract
    from facedouble.studio.server import serve_in_thread

    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        real = ws / "real"
        extract(grid_clips()[0], real, ExtractConfig(size=64, every_nth=15, progress=False))
        src = sorted(real.glob("*.png"))
        big = ws / "big"
        big.mkdir()
        for i in range(args.faces):
            (big / f"f{i:06d}.png").symlink_to(src[i % len(src)])
        with serve_in_thread(ws, TOKEN) as url:
            client = httpx.Client(base_url=url)
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
            sort_line = "" if args.no_sort else sort_bench(client, args.faces)
            client.close()
    print(f"# studio gallery, {machine()}; {args.faces} faces, {args.visible} thumbnails per screen, "
          f"median of {args.repeats}")
    print(f"{'screen':12s} {'cold ms':>8s} {'warm ms':>8s}")
    for label, c, w in rows:
        print(f"{label:12s} {c * 1000:8.0f} {w * 1000:8.0f}")
    print(f"page API alone (200 names of {args.faces}): {api_only * 1000:.1f} ms")
    if sort_line:
        print(sort_line)


if __name__ == "__main__":
    main()
