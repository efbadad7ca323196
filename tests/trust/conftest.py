"""Shared fixtures for the trust tests: real GRID footage, a marked + signed render, an attacked copy."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from tests.footage import write_clip

GRID = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "grid"
RENDER_FRAMES = 50  # 2 s at 25 fps: the shortest excerpt the watermark must be found in
PAYLOAD = 40503


def grid_clip(name: str) -> Path:
    """Path of a GRID clip; skips the test with a clear message if the shared data is missing."""
    path = GRID / f"{name}.mpg"
    if not path.is_file():
        pytest.skip(f"GRID footage not found at {GRID} (expected ../shared/data/grid next to the repo)")
    return path


def read_frames(path: Path, limit: int | None = None) -> list[np.ndarray]:
    from facedouble.io.video import open_source

    frames = []
    for frame in open_source(path):
        if limit is not None and frame.index >= limit:
            break
        frames.append(frame.image)
    return frames


@pytest.fixture(scope="session")
def certs(tmp_path_factory) -> tuple[Path, Path]:
    from facedouble.trust.c2pa_sign import init_test_ca

    return init_test_ca(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="session")
def key_file(tmp_path_factory) -> Path:
    """A watermark key file, as a workspace keeps it (keys/watermark.key, mode 0600); a fixed secret, so the
    tests see the same lattice every run (a workspace's own key is random)."""
    import hashlib

    from facedouble.policy.keys import key_path, write_private

    path = key_path(tmp_path_factory.mktemp("keyws"), "watermark")
    write_private(path, hashlib.sha256(b"facedouble test watermark key").hexdigest().encode() + b"\n")
    return path


@pytest.fixture(scope="session")
def wm_key(key_file):
    """The watermark key the test render is marked with."""
    from facedouble.trust.watermark import WatermarkKey

    return WatermarkKey.from_file(key_file)


@pytest.fixture(scope="session")
def render(tmp_path_factory, certs, wm_key) -> dict:
    """A GRID clip (pwij3p, 2 s) marked the way merge marks it, recorded, signed; and an attacked copy."""
    from facedouble.extract.detectors import get_detector
    from facedouble.trust import c2pa_sign, record
    from facedouble.trust.watermark import Watermarker

    target = grid_clip("pwij3p")
    frames = read_frames(target, RENDER_FRAMES)
    marker = Watermarker(PAYLOAD, wm_key, fps=25.0)
    detector = get_detector("retinaface")
    boxes = [detector.detect(f)[0].box for f in frames]
    marked = [marker.embed(f, box, frame_index=i) for i, (f, box) in enumerate(zip(frames, boxes, strict=True))]
    folder = tmp_path_factory.mktemp("render")
    consent = {"name": "test-performer", "record_hash": "0" * 64, "release_sha256": "1" * 64}
    rec = record.build_record(model_hash="2" * 64, consent=consent, target=target,
                              settings={"colour": "rct"}, payload_id=PAYLOAD, output_name="render.mp4",
                              watermark_key_id=wm_key.key_id)
    out = write_clip(folder / "render.mp4", marked, crf=18, metadata=record.mp4_metadata(rec))
    record.write_sidecar(out, rec)
    c2pa_sign.sign_file(out, rec, target, *certs)
    attacked = write_clip(folder / "attacked.mp4", read_frames(out), crf=28, scale=0.5)
    return {"target": target, "frames": frames, "boxes": boxes, "marked": marked, "path": out, "attacked": attacked,
            "record": rec}


def run_cli(argv: list[str]) -> int:
    """Run a trust subcommand the way `facedouble` does (its parser, its error handling)."""
    import sys

    from facedouble.cli import trust as cli
    from facedouble.errors import FacedoubleError

    parser = argparse.ArgumentParser(prog="facedouble")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except FacedoubleError as exc:
        print(f"facedouble {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
