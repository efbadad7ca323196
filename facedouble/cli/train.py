"""`facedouble train` and `facedouble model info|export`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from facedouble.colour import COLOUR_TRANSFERS
from facedouble.config import (
    StageConfig,
    add_config_args,
    add_workspace_arg,
    field_names,
    from_dict,
    settings_from_args,
    show_defaults,
    to_dict,
    validated,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `train` and `model` subcommands."""
    from facedouble.train.models.presets import PRESETS

    p = subparsers.add_parser("train", help="train a face model on a src and a dst faceset (resumes)",
                              description="Train DF/LIAE models. Re-running with the same --model resumes "
                                          "exactly; Ctrl-C saves first. Works under torchrun (DDP). Settings: "
                                          "TOML (--config, flat keys or [model]/[train] tables), --set, flags.")
    p.add_argument("--src", required=True, type=Path, help="faceset of the wanted face (needs consent)")
    p.add_argument("--dst", type=Path, action="append",
                   help="faceset of the performer in the target footage; give it again for more performers or "
                        "shots (DF models: one decoder each, one shared encoder; the first --dst is the target; "
                        "the batch's dst half is shared among them)")
    p.add_argument("--model", required=True, type=Path, help="model folder (created or resumed)")
    p.add_argument("--preset", choices=sorted(PRESETS), help="model preset for a new model (default quick96)")
    add_workspace_arg(p, "train checks the src faceset's consent record there")
    add_config_args(p, "train")
    add_config_flags(p)
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
    ex.add_argument("--opset", type=int, default=17, help="ONNX opset (default %(default)s)")
    ex.set_defaults(func=run_export)


def add_config_flags(p: argparse.ArgumentParser) -> None:
    """The flags of ModelConfig's and TrainConfig's settings (also used by `facedouble config show train`)."""
    from facedouble.train.models.gemm_grad import WEIGHT_GRAD_MODES
    from facedouble.train.models.presets import TRAIN_RECIPES, recipe_text
    from facedouble.train.optim import OPTIMIZER_KERNELS, OPTIMIZERS
    from facedouble.train.trainer import TrainConfig

    recipes = "; ".join(f"{name}: {recipe_text(r)}" for name, r in TRAIN_RECIPES.items())
    g = p.add_argument_group("model shape (new models only; default: the preset's)")
    g.add_argument("--arch", choices=["df", "liae"], help="model architecture")
    g.add_argument("--opts", help="architecture letters: u (pixel-norm), d (double res), t (extra downscale)")
    g.add_argument("--resolution", type=int, help="face size the model works at, in pixels")
    g.add_argument("--face-type", help="crop coverage the model is trained on (full, whole, ...)")
    for name in ("ae_dims", "e_dims", "d_dims", "d_mask_dims"):
        g.add_argument("--" + name.replace("_", "-"), type=int, help=f"{name.replace('_', ' ')} of the model")
    t = p.add_argument_group("training")
    t.add_argument("--batch-size", type=int, help="samples per iteration")
    t.add_argument("--optimizer", choices=list(OPTIMIZERS),
                   help="adabelief (DFL's SAEHD), rmsprop (DFL's Quick96) or adam; default for a new model: its "
                        f"preset's DFL recipe ({recipes}); a resumed model keeps its own")
    t.add_argument("--optimizer-kernel", choices=OPTIMIZER_KERNELS,
                   help="AdaBelief/RMSprop step: compiled = one fused pass per tensor via torch.compile (3-4x faster "
                        "on CPU, 5-40 s to compile once); auto (default) compiles on a CPU with a C++ compiler "
                        "unless --max-iters/--max-minutes cap the session below 500 iterations/20 minutes")
    t.add_argument("--conv-weight-grad", choices=WEIGHT_GRAD_MODES,
                   help="3x3 conv weight gradients: gemm = one im2col GEMM (1.05-2.7x faster than oneDNN's "
                        "kernel on AVX2); auto (default) = gemm on a CPU in fp32, native under bf16 and on GPUs")
    t.add_argument("--lr", type=float, help="learning rate; default: the preset's recipe, see --optimizer")
    t.add_argument("--lr-dropout", type=float,
                   help="keep probability of each update element, drawn afresh each step, 1 = off (DFL's "
                        "lr-dropout keeps 0.3; default: the preset's recipe, see --optimizer)")
    t.add_argument("--clipnorm", type=float, help="global gradient-norm clip, 0 = off")
    t.add_argument("--device", choices=["auto", "cpu", "cuda"], help="where to train")
    t.add_argument("--threads", type=int, help="torch intra-op threads, 0 = as many as torch picks")
    t.add_argument("--seed", type=int, help="random seed")
    t.add_argument("--workers", type=int, help="background sample-loading threads, 0 = inline")
    t.add_argument("--save-every-min", type=float, help="minutes between checkpoints")
    t.add_argument("--preview-every-min", type=float, help="minutes between preview images")
    t.add_argument("--keep-last", type=int, help="checkpoints kept")
    t.add_argument("--max-iters", type=int, help="stop when the iteration count reaches this total, 0 = no limit")
    t.add_argument("--max-minutes", type=float, help="stop after this many minutes in this session, 0 = no limit")
    t.add_argument("--color-aug", type=float, help="colour augmentation strength")
    t.add_argument("--ct-mode", choices=["none", *COLOUR_TRANSFERS],
                   help="colour transfer of src samples toward dst (the merge stage's transfers)")
    switches = {
        "eyes_mouth_prio": "extra weight on eyes and mouth (DFL's eyes_mouth_prio)",
        "bf16": "bf16 autocast with fp32 master weights (default: on where the hardware does bf16 natively - "
                "CUDA, AVX-512 BF16/AMX CPUs - off elsewhere, where it is emulated and ~10x slower)",
        "channels_last": "channels-last memory layout",
        "compile": "torch.compile the model (needs a C++ compiler on the CPU; first steps pay the compile)",
        "pretrain": "train on one faceset as both identities (no consent needed; such a model cannot swap)",
        "random_warp": "DFL's random warp of the input faces",
        "random_flip": "random horizontal flips",
        "masked_training": "losses on the masked face only",
    }
    for flag, text in switches.items():
        t.add_argument("--" + flag.replace("_", "-"), action=argparse.BooleanOptionalAction, default=None,
                       help=text)
    show_defaults(p, TrainConfig())


def _settings(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model shape, training) settings of this command line: TOML (flat or [model]/[train]), --set, flags."""
    from facedouble.train.models.presets import ModelConfig
    from facedouble.train.trainer import TrainConfig

    given = settings_from_args(args, (ModelConfig, TrainConfig), sections=("model", "train"))
    model_keys = set(field_names(ModelConfig))
    return ({k: v for k, v in given.items() if k in model_keys},
            {k: v for k, v in given.items() if k not in model_keys})


def effective(args: argparse.Namespace) -> dict:
    """A new model's shape (the preset plus model settings) and the training options, validated."""
    from facedouble.train.models.presets import ModelConfig, preset, train_recipe
    from facedouble.train.trainer import TrainConfig

    model_over, train_over = _settings(args)
    model = validated(from_dict(ModelConfig, {**to_dict(preset(args.preset or "quick96")), **model_over}))
    recipe = train_recipe(args.preset or "quick96")  # the preset's DFL optimizer/lr/lr_dropout; given ones win
    return {"model": model, "train": from_dict(TrainConfig, {**recipe, **train_over})}


def add_show_flags(p: argparse.ArgumentParser) -> None:
    """`config show train` also takes --preset (the model preset the shape starts from)."""
    from facedouble.train.models.presets import PRESETS

    p.add_argument("--preset", choices=sorted(PRESETS), help="model preset for a new model (default quick96)")
    add_config_flags(p)


CONFIG = StageConfig("train", add_show_flags, effective, "model shape and training options (ModelConfig, "
                     "TrainConfig)")


def run_train(args: argparse.Namespace) -> int:
    """Build or resume the model and train until a stop condition."""
    import os

    from facedouble import api

    model_over, train_over = _settings(args)
    summary = api.train_start(args.model, args.src, args.dst, preset=args.preset, model=model_over,
                              train=train_over, workspace=args.workspace)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"trained to iteration {summary['iteration']} ({summary['iterations']} this session, "
              f"{summary['samples_per_s']:.1f} samples/s); model in {args.model}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    """Print a model's summary."""
    from facedouble.api import model_info

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
    if m.get("dst_count", 1) > 1:
        print(f"dst sets   {m['dst_count']} (one decoder each)")
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
