"""Checkpoints: safetensors (weights, optimizer state) + JSON (config, iteration, RNG, loss history).

Layout of a model folder::

    latest.json            pointer to the newest complete checkpoint, with each file's sha256
    ckpt-<iter>-<id>/      weights.safetensors   the model (all merge needs; its sha256 = model hash)
                           training.safetensors  optimizer states, discriminator weights
                           state.json
    loss.csv               the whole loss curve, appended at each save (facedouble.train.losslog)
    preview.png            rewritten atomically at each save
    .lock                  held (flock) by the trainer using the folder; freed when it exits, also on kill -9

A checkpoint directory is filled first (each file written atomically) and only then does the
atomic rewrite of latest.json publish it, so a crash or kill -9 at any point leaves the previous
checkpoint as the one that loads. Unpublished or old directories are removed by the next save,
which keeps the newest `keep` checkpoints. Nothing here uses pickle.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from facedouble.errors import FacedoubleError, InputError
from facedouble.io.atomic import atomic_write_bytes, atomic_write_json, remove_temps
from facedouble.io.digest import sha256_file
from facedouble.io.lock import OutputLock

FORMAT = 1
LATEST = "latest.json"
WEIGHTS = "weights.safetensors"
TRAINING = "training.safetensors"
STATE = "state.json"


@dataclasses.dataclass
class Checkpoint:
    """A loaded checkpoint."""

    path: Path
    weights: dict[str, torch.Tensor]
    optimizers: dict[str, dict[str, Any]]  # name -> torch optimizer state_dict ({} if not loaded)
    aux_weights: dict[str, dict[str, torch.Tensor]]  # name -> state_dict of a training-only module
    state: dict[str, Any]
    weights_sha256: str




def training_to_safetensors(optimizers: dict[str, dict[str, Any]],
                            aux: dict[str, dict[str, torch.Tensor]] | None = None) -> bytes:
    """Serialize optimizer state_dicts (+ training-only module weights) as one safetensors file.

    Tensors are stored as `optim/<name>/<param id>/<key>` and `aux/<name>/<key>`; non-tensor values
    and param_groups go into the JSON metadata.
    """
    tensors, scalars, groups = {}, {}, {}
    for oname, sd in optimizers.items():
        groups[oname] = sd["param_groups"]
        for pid, st in sd["state"].items():
            for key, value in st.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optim/{oname}/{pid}/{key}"] = value.detach().contiguous().cpu()
                else:
                    scalars[f"{oname}/{pid}/{key}"] = value
    for mname, sd in (aux or {}).items():
        for key, value in sd.items():
            tensors[f"aux/{mname}/{key}"] = value.detach().contiguous().cpu()
    meta = {"param_groups": json.dumps(groups), "scalars": json.dumps(scalars)}
    return st_save(tensors, metadata=meta)


def training_from_safetensors(data: bytes) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, torch.Tensor]]]:
    """Inverse of `training_to_safetensors`: (optimizer state_dicts, aux module state_dicts)."""
    tensors = st_load(data)
    # The metadata lives in the safetensors JSON header: 8-byte little-endian length, then JSON.
    header_len = int.from_bytes(data[:8], "little")
    meta = json.loads(data[8:8 + header_len]).get("__metadata__", {})
    groups = json.loads(meta["param_groups"])
    optimizers: dict[str, dict[str, Any]] = {n: {"state": {}, "param_groups": g} for n, g in groups.items()}
    aux: dict[str, dict[str, torch.Tensor]] = {}
    entries = [(k.split("/", 1)[1], v) for k, v in tensors.items() if k.startswith("optim/")]
    entries += list(json.loads(meta.get("scalars", "{}")).items())
    for key, value in entries:
        oname, pid, name = key.split("/", 2)
        optimizers[oname]["state"].setdefault(int(pid), {})[name] = value
    for key, value in tensors.items():
        if key.startswith("aux/"):
            _, mname, name = key.split("/", 2)
            aux.setdefault(mname, {})[name] = value
    return optimizers, aux


def save_checkpoint(model_dir: str | Path, weights: dict[str, torch.Tensor],
                    optimizers: dict[str, dict[str, Any]], state: dict[str, Any], keep: int = 3,
                    aux: dict[str, dict[str, torch.Tensor]] | None = None,
                    before_publish: Callable[[Path, str], Any] | None = None) -> Path:
    """Write a complete checkpoint, publish it via latest.json, prune to the newest `keep`.

    `before_publish(folder, weights_sha256)` runs once the folder is filled and before latest.json names it,
    so what it writes there (the trainer's consent seal) is published with the checkpoint or not at all.
    """
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    name = f"ckpt-{int(state['iteration']):09d}-{secrets.token_hex(3)}"
    ckpt = model_dir / name
    ckpt.mkdir()
    weights_bytes = st_save({k: v.detach().contiguous().cpu() for k, v in weights.items()},
                            metadata={"format": str(FORMAT)})
    atomic_write_bytes(ckpt / WEIGHTS, weights_bytes)
    atomic_write_bytes(ckpt / TRAINING, training_to_safetensors(optimizers, aux))
    atomic_write_json(ckpt / STATE, {**state, "format": FORMAT})
    files = {f: sha256_file(ckpt / f) for f in (WEIGHTS, TRAINING, STATE)}
    if before_publish is not None:
        before_publish(ckpt, files[WEIGHTS])
    previous = _read_latest(model_dir) if (model_dir / LATEST).exists() else {"history": []}
    history = [h for h in previous.get("history", []) if (model_dir / h).is_dir()] + [name]
    history = history[-max(1, keep):]
    atomic_write_json(model_dir / LATEST, {"format": FORMAT, "checkpoint": name, "files": files,
                                           "iteration": int(state["iteration"]), "history": history})
    for old in model_dir.glob("ckpt-*"):  # older than `keep`, or never published (crashed save)
        if old.is_dir() and old.name not in history:
            shutil.rmtree(old, ignore_errors=True)
    return ckpt


def _read_latest(model_dir: Path) -> dict[str, Any]:
    try:
        latest = json.loads((model_dir / LATEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FacedoubleError(f"{model_dir} holds no trained model (no {LATEST})") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError(f"{model_dir / LATEST} is corrupt") from None
    if not isinstance(latest, dict) or latest.get("format") != FORMAT or "checkpoint" not in latest:
        raise InputError(f"{model_dir / LATEST} has an unsupported format")
    return latest


def has_checkpoint(model_dir: str | Path) -> bool:
    """True if the folder holds a published checkpoint."""
    return (Path(model_dir) / LATEST).is_file()


def checkpoint_dir(model_dir: str | Path) -> tuple[Path, dict[str, str]]:
    """(newest checkpoint directory, its files' expected sha256)."""
    model_dir = Path(model_dir)
    latest = _read_latest(model_dir)
    name = str(latest["checkpoint"])
    if "/" in name or "\\" in name or not name.startswith("ckpt-"):
        raise InputError(f"{model_dir / LATEST} names an invalid checkpoint")
    return model_dir / name, dict(latest["files"])


def _verified_bytes(path: Path, expected: str) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"checkpoint file missing: {path}") from None
    if hashlib.sha256(data).hexdigest() != expected:
        raise InputError(f"checkpoint file {path} does not match its recorded sha256 (corrupt or edited)")
    return data


def load_state(model_dir: str | Path) -> dict[str, Any]:
    """Only the JSON state of the newest checkpoint (config, iteration, history)."""
    ckpt, files = checkpoint_dir(model_dir)
    return json.loads(_verified_bytes(ckpt / STATE, files[STATE]))


def load_checkpoint(model_dir: str | Path, with_optimizer: bool = True) -> Checkpoint:
    """Load and verify the newest checkpoint (every file's sha256 is checked)."""
    ckpt, files = checkpoint_dir(model_dir)
    weights_bytes = _verified_bytes(ckpt / WEIGHTS, files[WEIGHTS])
    state = json.loads(_verified_bytes(ckpt / STATE, files[STATE]))
    optimizers, aux = training_from_safetensors(_verified_bytes(ckpt / TRAINING, files[TRAINING])) \
        if with_optimizer else ({}, {})
    return Checkpoint(ckpt, st_load(weights_bytes), optimizers, aux, state, files[WEIGHTS])


class ModelLock(OutputLock):
    """An exclusive lock on a model folder, so two trainers never write the same checkpoints (also not two
    in one process). flock is released by the kernel when the process ends, however it ends, so a crash
    leaves no stale lock; a read-only folder is refused with one line.
    """

    def __init__(self, model_dir: str | Path):
        super().__init__(Path(model_dir) / ".lock", "trainer", reentrant=False,
                         hint="stop it first, or train into another --model folder")
        remove_temps(model_dir)  # what a killed save left (latest.json, preview.png, loss.csv temp files)
