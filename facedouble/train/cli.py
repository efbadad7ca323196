"""`facedouble train` and `facedouble model info|export`."""

from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path
from typing import Any

from facedouble.errors import FacedoubleError
from facedouble.merge.colour import COLOUR_TRANSFERS

MODEL_FLAGS = ("arch", "opts", "resolution", "face_type", "ae_dims", "e_dims", "d_dims", "d_mask_dims")
TRAIN_FLAGS = ("batch_size", "optimizer", "optimizer_kernel", "conv_weight_grad", "lr", "lr_dropout", "clipnorm",
               "eyes_mouth_prio", "bf16", "channels_last", "compile", "device", "threads", "seed", "workers",
               "save_every_min", "preview_every_min", "keep_last", "max_iters", "max_minutes", "pretrain",
               "random_warp", "random_flip", "color_aug", "ct_mode", "masked_training")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `train` and `model` subcommands."""
    from facedouble.train.models.gemm_grad import WEIGHT_GRAD_MODES
    from facedouble.train.models.presets import PRESETS
    from facedouble.train.optim import OPTIMIZER_KERNELS

    p = subparsers.add_parser("train", help="train a face model on a src and a dst faceset (resumes)",
                              description="Train DF/LIAE models. Re-running with the same --model resumes "
                                          "exactly; Ctrl-C saves first. Works under torchrun (DDP).")
    p.add_argument("--src", required=True, type=Path, help="faceset of the wanted face (needs consent)")
    p.add_argument("--dst", type=Path, help="faceset of the performer in the target footage")
    p.add_argument("--model", required=True, type=Path, help="model folder (created or resumed)")
    p.add_argument("--preset", choices=sorted(PRESETS), help="model preset for a new model (default quick96)")
    p.add_argument("--workspace", type=Path, help="workspace holding consent records")
    p.add_argument("--config", type=Path, help="TOML file with train (and model) options")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any train/model option, e.g. --set lr_dropout=0.3 (repeatable)")
    g = p.add_argument_group("model shape (new models only)")
    g.add_argument("--arch", choices=["df", "liae"])
    g.add_argument("--opts", help="architecture letters: u (pixel-norm), d (double res), t (extra downscale)")
    g.add_argument("--resolution", type=int)
    g.add_argument("--face-type")
    for name in ("ae_dims", "e_dims", "d_dims", "d_mask_dims"):
        g.add_argument("--" + name.replace("_", "-"), type=int)
    t = p.add_argument_group("training")
    t.add_argument("--batch-size", type=int)
    t.add_argument("--optimizer", choices=["adabelief", "adam"])
    t.add_argument("--optimizer-kernel", choices=OPTIMIZER_KERNELS,
                   help="AdaBelief step: compiled = one fused pass per tensor via torch.compile (3-4x faster "
                        "on CPU, 5-40 s to compile once); auto (default) compiles on a CPU with a C++ compiler "
                        "unless --max-iters/--max-minutes cap the session below 500 iterations/20 minutes")
    t.add_argument("--conv-weight-grad", choices=WEIGHT_GRAD_MODES,
                   help="3x3 conv weight gradients: gemm = one im2col GEMM (1.05-2.7x faster than oneDNN's "
                        "kernel on AVX2); auto (default) = gemm on a CPU in fp32, native under bf16 and on GPUs")
    t.add_argument("--lr", type=float)
    t.add_argument("--lr-dropout", type=float, help="keep probability of each update element (DFL: 0.3)")
    t.add_argument("--clipnorm", type=float)
    t.add_argument("--device", choices=["auto", "cpu", "cuda"])
    t.add_argument("--threads", type=int)
    t.add_argument("--seed", type=int)
    t.add_argument("--workers", type=int)
    t.add_argument("--save-every-min", type=float)
    t.add_argument("--preview-every-min", type=float)
    t.add_argument("--keep-last", type=int)
    t.add_argument("--max-iters", type=int, help="stop when the iteration count reaches this total")
    t.add_argument("--max-minutes", type=float, help="stop after this many minutes in this session")
    t.add_argument("--color-aug", type=float)
    t.add_argument("--ct-mode", choices=["none", *COLOUR_TRANSFERS],
                   help="colour transfer of src samples toward dst (the merge stage's transfers)")
    switches = {
        "eyes_mouth_prio": "extra weight on eyes and mouth (DFL's eyes_mouth_prio)",
        "bf16": "bf16 autocast with fp32 master weights (default: on where the hardware does bf16 natively - "
                "CUDA, AVX-512 BF16/AMX CPUs - off elsewhere, where it is emulated and ~10x slower)",
        "channels_last": "channels-last memory layout (default on)",
        "compile": "torch.compile the model (needs a C++ compiler on the CPU; first steps pay the compile)",
        "pretrain": "train on one faceset as both identities (no consent needed; such a model cannot swap)",
        "random_warp": "DFL's random warp of the input faces (default on)",
        "random_flip": "random horizontal flips (default on)",
        "masked_training": "losses on the masked face only (default on)",
    }
    for flag, text in switches.items():
        t.add_argument("--" + flag.replace("_", "-"), action=argparse.BooleanOptionalAction, default=None,
                       help=text)
    p.set_defaults(func=run_train)

    m = subparsers.add_parser("model", help="inspect or export a trained model")
    ms = m.add_subparsers(dest="model_command", metavar="SUBCOMMAND", required=True)
    info = ms.add_parser("info", help="config, iteration, parameters, consent, weights hash")
    info.add_argument("model_dir", type=Path)
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=run_info)
    ex = ms.add_parser("export", help="export the dst->src swap path")
    ex.add_argument("model_dir", type=Path)
    ex.add_argument("--onnx", required=True, type=Path, help="output .onnx file")
    ex.add_argument("--opset", type=int, default=17)
    ex.set_defaults(func=run_export)


def _parse_sets(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise FacedoubleError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = value  # bare string
    return out


def run_train(args: argparse.Namespace) -> int:
    """Build or resume the model and train until a stop condition."""
    from facedouble.train.trainer import Trainer

    given: dict[str, Any] = {}
    if args.config:
        try:
            given.update(tomllib.loads(args.config.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise FacedoubleError(f"config file not found: {args.config}") from None
        except tomllib.TOMLDecodeError as exc:
            raise FacedoubleError(f"config file {args.config} is not valid TOML: {exc}") from None
    given.update(_parse_sets(args.set))
    given.update({k: getattr(args, k) for k in MODEL_FLAGS + TRAIN_FLAGS if getattr(args, k) is not None})
    unknown = sorted(set(given) - set(MODEL_FLAGS) - set(TRAIN_FLAGS))
    if unknown:
        raise FacedoubleError(f"unknown option(s): {', '.join(unknown)}")
    model_over = {k: v for k, v in given.items() if k in MODEL_FLAGS}
    train_over = {k: v for k, v in given.items() if k in TRAIN_FLAGS}
    trainer = Trainer.create(args.model, args.src, args.dst, args.preset, model_over, train_over,
                             args.workspace)
    try:
        summary = trainer.run()
    finally:
        end_process_group()
    if trainer.rank == 0:
        print(f"trained to iteration {summary['iteration']} ({summary['iterations']} this session, "
              f"{summary['samples_per_s']:.1f} samples/s); model in {args.model}")
    return 0


def end_process_group() -> None:
    """Tear down torchrun's process group before exit: a gloo group left alive can abort a rank at exit
    ("terminate called without an active exception") after the work is done."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()  # no barrier: after a failure on one rank it would hang the others


def model_info(model_dir: Path) -> dict[str, Any]:
    """What `model info` shows, as a dict."""
    from facedouble.train import checkpoint as ck

    state = ck.load_state(model_dir)
    ckpt, files = ck.checkpoint_dir(model_dir)
    hist = state.get("loss_history") or []
    return {"model_dir": str(model_dir), "checkpoint": ckpt.name, "iteration": state["iteration"],
            "model": state["model"], "train": state["train"], "param_count": state.get("param_count"),
            "consent": state.get("consent"), "model_hash": files[ck.WEIGHTS],
            "last_loss": {"src": hist[-1][1], "dst": hist[-1][2]} if hist else None,
            "src": state.get("src"), "dst": state.get("dst"), "world_size": state.get("world_size", 1)}


def run_info(args: argparse.Namespace) -> int:
    """Print a model's summary."""
    info = model_info(args.model_dir)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    m = info["model"]
    print(f"model      {info['model_dir']}  ({info['checkpoint']})")
    arch = m["arch"] + ("-" + m["opts"] if m["opts"] else "")
    print(f"arch       {arch}  {m['resolution']} px  {m['face_type']} face  "
          f"ae/e/d/mask {m['ae_dims']}/{m['e_dims']}/{m['d_dims']}/{m['d_mask_dims']}")
    print(f"params     {info['param_count'] / 1e6:.2f} M")
    print(f"iteration  {info['iteration']}")
    if info["last_loss"]:
        print(f"loss       src {info['last_loss']['src']:.4f}  dst {info['last_loss']['dst']:.4f}")
    consent = info["consent"]
    print(f"consent    {consent['name'] + ' (' + consent['record_hash'][:16] + '…)' if consent else 'none'}")
    print(f"weights    sha256 {info['model_hash']}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Export the swap path to ONNX and report the PyTorch/onnxruntime agreement."""
    from facedouble.train.export import export_onnx

    info = export_onnx(args.model_dir, args.onnx, opset=args.opset)
    print(f"wrote {args.onnx} ({info['bytes'] / 1e6:.1f} MB); "
          f"max |onnx - torch| = {info['max_abs_diff']:.2e}")
    return 0
