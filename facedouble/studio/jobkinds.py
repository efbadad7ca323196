"""The jobs the studio can start: each kind builds a `facedouble ...` command line from checked paths.

Only these kinds exist (never a free command line), and every path in a request is resolved inside the
workspace first (facedouble.studio.paths.inside), so a job cannot read or write outside it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from facedouble.errors import InputError
from facedouble.studio.paths import inside, relative
from facedouble.studio.workspace import CLIP_SUFFIXES

TRAIN_PRESETS = ("tiny", "quick96", "saehd-df-128", "saehd-liae-ud-128")
TRAIN_OPTIONS = {"batch_size": int, "max_iters": int, "max_minutes": float, "save_every_min": float,
                 "preview_every_min": float, "lr": float, "threads": int, "workers": int}
MAX_EXTRA_DST = 7  # extra dst identities a studio train job may add (each one is a decoder)
TRAIN_GRACE_S = 120.0  # a cancelled training saves its checkpoint first: give it time


def _dir(workspace: Path, rel: str | None, what: str) -> Path:
    if not rel:
        raise InputError(f"{what} is required")
    path = inside(workspace, rel)
    if not path.is_dir():
        raise InputError(f"{what} not found: {rel}")
    return path


def _new_path(workspace: Path, rel: str | None, what: str) -> Path:
    if not rel:
        raise InputError(f"{what} is required")
    return inside(workspace, rel)


def _clip(workspace: Path, rel: str | None) -> Path:
    clip = inside(workspace, rel or "")
    if not clip.is_file() or not clip.name.lower().endswith(CLIP_SUFFIXES):
        raise InputError(f"clip not found: {rel}")
    return clip


def _opt_flags(options: dict[str, Any], allowed: dict[str, type]) -> list[str]:
    flags = []
    for name, value in (options or {}).items():
        if name not in allowed:
            raise InputError(f"unknown option {name!r} (allowed: {', '.join(allowed)})")
        if value is None or value == "":
            continue
        try:
            value = allowed[name](value)
        except (TypeError, ValueError):
            raise InputError(f"option {name} must be a {allowed[name].__name__}") from None
        flags += ["--" + name.replace("_", "-"), str(value)]
    return flags


def build(workspace: Path, body: dict[str, Any]) -> tuple[str, list[str], dict[str, Any]]:
    """(kind, command arguments, start options) for a job request; InputError for anything not allowed."""
    kind = body.get("kind")
    ws = str(workspace)
    if kind == "extract":
        clip = _clip(workspace, body.get("clip"))
        output = inside(workspace, body.get("output") or f"facesets/{clip.stem}")
        args = ["extract", str(clip), str(output)]
        if body.get("every_nth"):
            args += ["--every-nth", str(int(body["every_nth"]))]
        return kind, args, {"meta": {"output": relative(workspace, output)}}
    if kind == "train":
        src = _dir(workspace, body.get("src"), "src faceset")
        dst = _dir(workspace, body.get("dst") or body.get("src"), "dst faceset")
        model = _new_path(workspace, body.get("model"), "model folder")
        args = ["train", "--src", str(src), "--dst", str(dst), "--model", str(model), "--workspace", ws]
        extra = body.get("extra_dst") or []
        if len(extra) > MAX_EXTRA_DST:
            raise InputError(f"at most {MAX_EXTRA_DST} extra dst facesets")
        seen = {dst}
        for rel in extra:  # multi-identity training: `train` takes --dst once per identity
            path = _dir(workspace, rel, "extra dst faceset")
            if path in seen:
                raise InputError(f"dst faceset {rel} is given twice")
            seen.add(path)
            args += ["--dst", str(path)]
        preset = body.get("preset")
        if preset:
            if preset not in TRAIN_PRESETS:
                raise InputError(f"unknown preset {preset!r} (choose from {', '.join(TRAIN_PRESETS)})")
            args += ["--preset", preset]
        options = body.get("options") or {}
        args += _opt_flags(options, TRAIN_OPTIONS)
        # the CLI's consent gate, before the job is queued: an unbound (or expired, withdrawn, other person's)
        # src faceset is refused here with the gate's own message (PolicyError, 403); `train` checks it again
        from facedouble.consent.records import require_consent

        require_consent(src, workspace)
        meta = {"model": relative(workspace, model), "max_iters": options.get("max_iters") or None}
        return kind, args, {"grace_s": TRAIN_GRACE_S, "meta": meta}
    if kind == "mask-train":
        facesets = body.get("facesets") or ([body["faceset"]] if body.get("faceset") else [])
        if not facesets:
            raise InputError("faceset is required")
        model = _new_path(workspace, body.get("model"), "mask model folder")
        args = ["mask", "train"]
        for rel in facesets:
            args += ["--faceset", str(_dir(workspace, rel, "faceset"))]
        args += ["--model", str(model)]
        if body.get("max_iters"):
            args += ["--max-iters", str(int(body["max_iters"]))]
        return kind, args, {"grace_s": TRAIN_GRACE_S, "meta": {"model": relative(workspace, model)}}
    if kind == "mask-apply":
        faceset = _dir(workspace, body.get("faceset"), "faceset")
        model = body.get("model") or "generic"
        model_arg = "generic" if model == "generic" else str(_dir(workspace, model, "mask model folder"))
        return kind, ["mask", "apply", "--model", model_arg, str(faceset)], {
            "meta": {"faceset": relative(workspace, faceset)}}
    if kind == "merge":
        model = _dir(workspace, body.get("model"), "model folder")
        faceset = _dir(workspace, body.get("faceset"), "target faceset")
        out = _new_path(workspace, body.get("out"), "output file")
        if out.suffix.lower() not in (".mp4", ".mov", ".mkv"):
            raise InputError("merge output must end in .mp4, .mov or .mkv")
        args = ["merge", "--model", str(model), "--target", str(faceset), "--out", str(out), "--workspace", ws]
        if body.get("overrides"):
            ovr = inside(workspace, body["overrides"])
            if not ovr.is_file():
                raise InputError(f"overrides file not found: {body['overrides']}")
            args += ["--overrides", str(ovr)]
        from facedouble.studio.tuning import settings_of

        settings = settings_of(body.get("settings"))  # checked here: a bad value never reaches a job
        for name, value in settings.items():  # every per-face setting the panel has (region, plate parts, ...)
            args += ["--set", f"{name}={json.dumps(value)}"]  # a JSON string or number is a TOML value too
        return kind, args, {"meta": {"out": relative(workspace, out)}}
    raise InputError(f"unknown job kind {kind!r}")
