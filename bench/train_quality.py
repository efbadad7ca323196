"""Does bf16 keep quality? Held-out SSIM after the same samples in fp32 and bf16, on a GRID pair.

    python -m bench.train_quality --preset tiny --iters 300          # same number of samples
    python -m bench.train_quality --preset quick96 --minutes 10      # same CPU-time budget

src = GRID bbaf2n, dst = GRID lbbc2a; the last 20% of dst frames are held out. The figure is the
masked SSIM of dst->dst reconstructions of held-out faces (what the training loss optimises).
Consent: this benchmark builds `Trainer` directly on the project's own sample footage; the CLI and
`Trainer.create` always run the consent gate.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT.parent / "shared" / "data" / "grid"


def main() -> None:
    """Train fp32 and bf16 from the same init on the same batches; print held-out SSIM."""
    import torch

    from facedouble.extract.pipeline import ExtractConfig, extract
    from facedouble.train.data import FaceBank
    from facedouble.train.models.presets import preset
    from facedouble.train.trainer import TrainConfig, Trainer, reconstruction_ssim

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--minutes", type=float, default=0.0, help="time budget per run instead of --iters")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    mcfg = preset(args.preset)
    work = Path(tempfile.mkdtemp(prefix="facedouble_quality_"))
    try:
        dirs = {}
        for clip in ("bbaf2n", "lbbc2a"):
            dirs[clip] = work / clip
            extract(GRID / f"{clip}.mpg", dirs[clip], ExtractConfig(size=mcfg.resolution, progress=False))
        paths = sorted(dirs["lbbc2a"].glob("*.png"))
        cut = int(len(paths) * 0.8)
        dst_train = work / "dst_train"
        dst_train.mkdir()
        for p in paths[:cut]:
            shutil.copy(p, dst_train)
        held = FaceBank(dirs["lbbc2a"], mcfg.resolution, mcfg.face_type, paths[cut:])
        print(f"# {args.preset}, batch {args.batch}, {args.threads} threads, load average "
              f"{os.getloadavg()[0]:.2f} (shared machine)")
        for prec in ("fp32", "bf16"):
            tcfg = TrainConfig(batch_size=args.batch, bf16=prec == "bf16", max_iters=0 if args.minutes else args.iters,
                               max_minutes=args.minutes, save_every_min=1e9, preview_every_min=1e9, workers=1)
            tr = Trainer(work / f"model_{prec}", mcfg, tcfg, dirs["bbaf2n"], dst_train, consent=None)
            s0 = reconstruction_ssim(tr.model, held.images, mcfg.resolution, masks=held.masks)
            t, c = time.perf_counter(), time.process_time()
            summary = tr.run()
            s1 = reconstruction_ssim(tr.model, held.images, mcfg.resolution, masks=held.masks)
            print(f"{prec}: {summary['iteration']} iterations ({summary['iteration'] * args.batch} samples/side) "
                  f"in {time.perf_counter() - t:.0f} s wall, {time.process_time() - c:.0f} CPU-s; "
                  f"held-out masked SSIM {s0:.4f} -> {s1:.4f}; last loss src {summary['loss'][0]:.4f} "
                  f"dst {summary['loss'][1]:.4f}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
