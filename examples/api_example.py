"""facedouble's Python API end to end: extract -> consent -> train -> merge (marked, signed) -> verify.

    python examples/api_example.py [--grid ../shared/data/grid] [--out api-example-output] [--iterations 3]

Runs on two GRID clips (source `bbaf2n`: the wanted face; target `lbbc2a`: the performer) with the `tiny`
model preset for a few iterations, so it takes well under a minute on two CPU cores; the render is a blur
of a face, not a usable swap (see the README's demo figures for what minutes of training give).
The trust rules apply as they do on the command line: training needs the source faceset bound to a
consent record, and the render re-checks that consent and is watermarked, recorded and C2PA-signed (here
with a local test signer from `certs_init`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from facedouble import api
from facedouble.progress import Progress, TqdmBars

GRID = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "grid"
IDENTITY = "example-source"


def run(grid: Path, out: Path, iterations: int = 3, progress: Any = None) -> dict[str, Any]:
    """The whole pipeline through `facedouble.api`; returns what each step gave (the test checks it)."""
    source, target = grid / "bbaf2n.mpg", grid / "lbbc2a.mpg"
    workspace = out / "workspace"
    src_faces, dst_faces, model = out / "source-faceset", out / "target-faceset", out / "model"

    # 1. extract: the source's faces for training (every 3rd frame is plenty here), the target's for merging
    api.extract(source, src_faces, size=64, every_nth=3, embed_every=10, progress=False)
    dst = api.extract(target, dst_faces, size=64, embed_every=25, progress=False)

    # 2. consent: a record of the source's (here: demo) release, bound to the faceset; a test signer
    release = out / "release.txt"
    release.write_text("Example consent: the GRID speaker of bbaf2n (CC BY 4.0), for trying facedouble out.\n",
                       encoding="utf-8")
    if IDENTITY not in {r.name for r in _identities(workspace)}:
        # reference faces of the person who signed (here the source faces stand in for the release session):
        # a faceset is bound only if it shows that person
        api.identity_add(workspace, IDENTITY, release, scope="facedouble API example", reference=src_faces)
    api.identity_bind(workspace, IDENTITY, src_faces)
    if not (workspace / "certs" / "signer.pem").exists():
        api.certs_init(workspace)

    # 3. train in this process for a few iterations (re-running resumes and adds as many again)
    summary = api.train_start(model, src_faces, dst_faces, preset="tiny", workspace=workspace,
                              iterations=iterations, progress=progress,
                              train={"batch_size": 4, "workers": 0, "optimizer_kernel": "eager",
                                     "save_every_min": 60.0, "preview_every_min": 60.0})
    status = api.train_status(model)

    # 4. merge: the whole target clip, with every provenance mark; a fresh render each run
    render = out / "render.mp4"
    result = api.merge_render(model, dst_faces, render, workspace=workspace, fresh=True, progress=progress,
                              batch=8, colour="rct")

    # 5. verify: C2PA manifest, watermark and render record
    verdict = api.verify(render, workspace=workspace)  # the workspace holds the watermark key
    return {"target_faces": dst.faces_written, "train": summary, "status": status, "merge": result,
            "verify": verdict, "render": render}


def _identities(workspace: Path) -> list:
    from facedouble.consent.records import list_identities

    return list_identities(workspace) if (workspace / "identities").exists() else []


def main(argv: list[str] | None = None) -> int:
    """Command line of the example; exit code 0 when the render verifies as marked."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grid", type=Path, default=GRID, help=f"folder with the GRID clips (default {GRID})")
    ap.add_argument("--out", type=Path, default=Path("api-example-output"), help="output folder")
    ap.add_argument("--iterations", type=int, default=3, help="training iterations (default 3)")
    args = ap.parse_args(argv)
    bars = TqdmBars()
    try:
        got = run(args.grid, args.out, args.iterations, progress=bars)
    finally:
        bars.close()
    v = got["verify"]
    print(f"trained to iteration {got['status']['iteration']}; rendered {got['merge'].frames} frames "
          f"into {got['render']}")
    print(f"verify: {v['summary']} (exit code {v['exit_code']})")
    return 0 if v["exit_code"] == 0 else 1


def print_events(event: Progress) -> None:
    """Another progress callback: plain lines (what a log or the studio's event stream would get)."""
    print(event.to_dict())


if __name__ == "__main__":
    sys.exit(main())
