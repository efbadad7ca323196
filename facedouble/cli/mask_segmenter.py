"""`facedouble mask train|apply|remove|show`: the trainable face segmenter (XSeg-class) on the command line."""

from __future__ import annotations

import argparse
from pathlib import Path


def register_segmenter(sub: argparse._SubParsersAction) -> None:
    """Add the segmenter subcommands to the `mask` group."""
    t = sub.add_parser("train", help="train (or resume) a face segmenter on the labelled faces of facesets",
                       description="Trains a small U-Net (face-visible vs not) on every labelled face of the "
                       "--faceset folders. Re-running with the same --model resumes exactly; Ctrl-C saves first. "
                       "--from generic fine-tunes the shipped generic segmenter on your shot's labels.")
    t.add_argument("--faceset", action="append", required=True, type=Path, help="faceset with labels (repeatable)")
    t.add_argument("--model", required=True, type=Path, help="mask model folder (created or resumed)")
    t.add_argument("--from", dest="init", help="start a new model from these weights ('generic' or a folder)")
    t.add_argument("--resolution", type=int, help="input side of a new model (default 256)")
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (cosine to lr/20 at --max-iters)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--max-iters", type=int, help="stop when the iteration count reaches this total")
    t.add_argument("--lr-iters", type=int, help="iterations of the cosine learning-rate decay (default --max-iters)")
    t.add_argument("--max-minutes", type=float, help="stop after this many minutes in this session")
    t.add_argument("--save-every-min", type=float, default=10.0)
    t.add_argument("--preview-every-min", type=float, default=5.0)
    t.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    t.add_argument("--workers", type=int, default=1, help="batch-preparing threads")
    t.add_argument("--tone", type=float, default=0.0,
                   help="share of samples with a strong tone change (darker skin, warm or cool light)")
    t.add_argument("--shade", type=float, default=0.0,
                   help="share of samples with a synthetic beard, moustache or shadow (kept as face)")
    t.add_argument("--prior", choices=("none", "outline"),
                   help="what the model sees besides the pixels: 'outline' = also the face outline from the "
                        "landmarks (a new model or one started --from an RGB model; default: the model's own, "
                        "else none)")
    t.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast (default: where the hardware does bf16 natively)")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=run_train)
    a = sub.add_parser("apply", help="predict each face's mask and store it in the face's metadata")
    a.add_argument("faceset", type=Path)
    a.add_argument("--model", default="generic", help="mask model folder, or 'generic' (the shipped one, default)")
    a.add_argument("--batch-size", type=int, default=32)
    a.add_argument("--no-progress", action="store_true")
    a.set_defaults(func=run_apply)
    r = sub.add_parser("remove", help="delete the applied masks of a faceset")
    r.add_argument("faceset", type=Path)
    r.set_defaults(func=run_remove)
    s = sub.add_parser("show", help="write overlay previews of the applied masks (green kept, red cut)")
    s.add_argument("faceset", type=Path)
    s.add_argument("out_dir", type=Path)
    s.add_argument("--limit", type=int, help="at most this many previews")
    s.set_defaults(func=run_show)


def _bars(disabled: bool):  # noqa: ANN202 - a progress callback
    from facedouble.progress import TqdmBars

    return TqdmBars(disable=disabled)


def run_train(args: argparse.Namespace) -> int:
    """CLI: train."""
    from facedouble.mask.segmenter.train import SegTrainConfig, SegTrainer

    cfg = SegTrainConfig(batch_size=args.batch_size, lr=args.lr, seed=args.seed, max_iters=args.max_iters,
                         lr_iters=args.lr_iters, max_minutes=args.max_minutes, save_every_min=args.save_every_min,
                         preview_every_min=args.preview_every_min, bf16=args.bf16, threads=args.threads,
                         workers=args.workers, tone=args.tone, shade=args.shade)
    trainer = SegTrainer(args.model, args.faceset, cfg, resolution=args.resolution, init=args.init,
                         progress=_bars(args.no_progress), prior=args.prior)
    summary = trainer.run()
    print(f"trained the segmenter to iteration {summary['iteration']} ({summary['iterations']} this session, "
          f"{summary['samples_per_s']:.1f} samples/s, loss {summary['loss']:.4f}); model in {args.model}")
    return 0


def run_apply(args: argparse.Namespace) -> int:
    """CLI: apply."""
    from facedouble.mask.segmenter.apply import apply_model

    n = apply_model(args.faceset, args.model, batch=args.batch_size, progress=_bars(args.no_progress))
    print(f"stored predicted masks in {n} face(s) of {args.faceset}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    """CLI: remove."""
    from facedouble.mask.segmenter.apply import remove_masks

    print(f"removed the applied masks of {remove_masks(args.faceset)} face(s)")
    return 0


def run_show(args: argparse.Namespace) -> int:
    """CLI: show."""
    from facedouble.mask.segmenter.apply import show_masks

    n = show_masks(args.faceset, args.out_dir, args.limit)
    print(f"wrote {n} preview(s) to {args.out_dir}")
    return 0
