"""Merge tuning logic: frame previews through the trust path, per-frame keys saved as a merge overrides file.

A preview is `facedouble.trust.render.render_preview`, the one preview path of the CLI: consent re-checked,
explicit-content guard, watermark, "SYNTHETIC PREVIEW" label. Nothing here renders a swap any other way.

Keys: the artist sets the settings at a frame and they hold from there to the next key ("copied forward",
as DeepFaceLab's interactive merger does), or applies them to an explicit range. Both are stored as the
`[[override]]` rules `facedouble merge --overrides FILE` reads (facedouble.merge.overrides; JSON form
`{"override": [{"frames": "120-179", "colour": "lct", ...}, ...]}`): keys first, in frame order, each over
its run, then the ranges (later rules win).
"""

from __future__ import annotations

import dataclasses
import io
import threading
from pathlib import Path
from typing import Any

from facedouble.errors import InputError
from facedouble.io.atomic import atomic_write_json
from facedouble.merge.overrides import FaceSettings, OverrideFile, OverrideRule, Overrides, load_overrides
from facedouble.nn.checkpoint import LATEST
from facedouble.studio.frames import scrubber

OVERRIDES_DIR = "overrides"
SETTING_NAMES = tuple(f.name for f in dataclasses.fields(FaceSettings))
_models: dict[str, tuple[int, Any]] = {}  # model folder -> (latest.json mtime, loaded swapper)
_plans: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()
_render_lock = threading.Lock()  # one preview at a time: on 2 cores two at once only makes both late


def settings_of(raw: dict[str, Any] | None) -> dict[str, Any]:
    """Only the per-frame settings (FaceSettings fields), typed and validated; InputError otherwise."""
    out: dict[str, Any] = {}
    for name, value in (raw or {}).items():
        if name not in SETTING_NAMES:
            raise InputError(f"unknown merge setting {name!r} (per-frame settings: {', '.join(SETTING_NAMES)})")
        if value is None or value == "":
            continue
        kind = type(getattr(FaceSettings(), name))
        try:
            out[name] = kind(value)
        except (TypeError, ValueError):
            raise InputError(f"merge setting {name} must be a {kind.__name__}") from None
    dataclasses.replace(FaceSettings(), **out).validate()
    return out


def load_model(folder: Path) -> Any:
    """The swapper of a model folder, loaded once and again only when a new checkpoint is published."""
    from facedouble.merge.model import load_model as load

    stamp = (folder / LATEST).stat().st_mtime_ns if (folder / LATEST).is_file() else 0
    with _lock:
        hit = _models.get(str(folder))
        if hit and hit[0] == stamp:
            return hit[1]
    model = _for_previews(load(folder))
    with _lock:
        _models[str(folder)] = (stamp, model)
    return model


def _for_previews(model: Any) -> Any:
    """Keep the weights in bf16 where the swapper computes in bf16 (native bf16 only: AVX-512 BF16/AMX, CUDA).

    Under autocast every call casts all fp32 weights to bf16 again (the cast cache lives for one autocast
    block); a preview swaps one face, so that cast (~58 M weights for saehd-df-128) cost about as much as
    the forward pass itself. Autocast computes the convolutions from the same bf16 copies, so the output is
    identical (tests/studio/test_merge_tuning.py). A cached model then serves every preview of the session.
    """
    import torch

    if getattr(model, "bf16", False) and isinstance(getattr(model, "model", None), torch.nn.Module):
        model.model.to(torch.bfloat16).requires_grad_(False)
    return model


def _plan(model: Any, faceset: Path) -> Any:
    from facedouble.merge.pipeline import MergeConfig, load_plan

    key = (str(model.model_hash), str(faceset))
    with _lock:
        hit = _plans.get(key)
    if hit is None:
        hit = load_plan(model, faceset, MergeConfig(), None)
        with _lock:
            _plans[key] = hit
    return hit


def choices() -> dict[str, list[str]]:
    """The values each choice-valued per-frame setting takes, from merge's own registries (the panel's menus)."""
    import itertools

    from facedouble.colour import COLOUR_TRANSFERS
    from facedouble.merge.blend import BLEND_MODES
    from facedouble.merge.masks import MASK_MODES

    out = {"mask": list(MASK_MODES), "colour": list(COLOUR_TRANSFERS), "blend": list(BLEND_MODES)}
    if "region" in SETTING_NAMES:  # dubbing regions (facedouble.merge.region), where this merge has them
        from facedouble.merge import region

        parts = list(region.PLATE_PARTS)
        out["region"] = list(region.REGIONS)
        out["keep_from_plate"] = ["none"] + [",".join(c) for n in range(1, len(parts) + 1)
                                             for c in itertools.combinations(parts, n)]
    return out


def shot(model_dir: Path, faceset: Path) -> dict[str, Any]:
    """Frame count, fps and clip of the target (for the scrubber), the default settings and their choices."""
    plan = _plan(load_model(model_dir), faceset)
    return {"frames": int(plan.frame_count), "fps": float(plan.fps), "clip": str(plan.clip),
            "defaults": dataclasses.asdict(FaceSettings()), "choices": choices()}


def preview_png(model_dir: Path, faceset: Path, index: int, settings: dict[str, Any], workspace: Path,
                rules: list[OverrideRule] | None = None) -> bytes:
    """Frame `index` swapped with `settings` on top of `rules`, marked by render_preview, as a PNG.

    PNG, not JPEG: the artist judges seams and grain, and the frame shown is exactly the marked one
    (watermark included). Fast zlib level: at 720p encoding stays a small part of the preview's time.
    """
    import cv2

    from facedouble.merge.pipeline import MergeConfig
    from facedouble.trust.render import render_preview

    model = load_model(model_dir)
    config = MergeConfig(**settings_of(settings))
    # the panel's settings are the frame's: a one-frame rule on top of the saved ones
    frame_rule = [OverrideRule(frames=str(index), **settings_of(settings))] if settings else []
    # the shot plan depends on the transform smoothing, not on the panel's settings: reuse the cached one
    # (render_preview still runs the consent check, guard, watermark and label on every call)
    plan = _plan(model, faceset) if config.transform_smooth == MergeConfig().transform_smooth else None
    with _render_lock:
        # the frame from the scrubber's open decoder (facedouble.studio.frames), not a fresh seek per preview
        frame = scrubber((plan or _plan(model, faceset)).clip).frame(index)
        image = render_preview(model, faceset, index, workspace=workspace, config=config,
                               rules=list(rules or []) + frame_rule, plan=plan, frame=frame)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise InputError("could not encode the preview")
    return buf.tobytes()


def plate_jpeg(model_dir: Path, faceset: Path, index: int, quality: int = 90) -> bytes:
    """The untouched plate frame (the "before" of the wipe); no swap, so no mark is due.

    From the same scrubber as the preview, one at a time with previews: the browser asks for both at once,
    and on 2 cores a second decoder only delays the preview."""
    from PIL import Image

    plan = _plan(load_model(model_dir), faceset)
    with _render_lock:
        frame = scrubber(plan.clip).frame(index)
    buf = io.BytesIO()
    Image.fromarray(frame.image).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


# -- the session: keys and ranges, stored as an overrides file -------------------------------------------
def overrides_path(workspace: Path, faceset_rel: str) -> Path:
    """WORKSPACE/overrides/<faceset path with / as _>.json: one overrides file per target faceset."""
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in faceset_rel.strip("/")) or "shot"
    return workspace / OVERRIDES_DIR / f"{slug}.json"


def rules_from(keys: list[dict[str, Any]], ranges: list[dict[str, Any]]) -> list[OverrideRule]:
    """Override rules: each key's settings from its frame to the frame before the next key, then the ranges."""
    ordered = sorted(((int(k["frame"]), settings_of(k.get("settings"))) for k in keys), key=lambda k: k[0])
    rules = []
    for i, (frame, settings) in enumerate(ordered):
        if frame < 0:
            raise InputError("key frames must be >= 0")
        if i + 1 < len(ordered) and ordered[i + 1][0] == frame:
            raise InputError(f"two keys at frame {frame}")
        end = str(ordered[i + 1][0] - 1) if i + 1 < len(ordered) else ""
        rules.append(OverrideRule(frames=f"{frame}-{end}", **settings))
    for r in ranges:
        rules.append(OverrideRule(frames=str(r["frames"]), **settings_of(r.get("settings"))))
    Overrides(FaceSettings(), rules)  # every rule checked before anything is written
    return rules


def save_session(workspace: Path, faceset_rel: str, keys: list[dict], ranges: list[dict]) -> dict[str, Any]:
    """Write the overrides file (what merge reads) and the studio's own session (keys as the artist set them)."""
    rules = rules_from(keys, ranges)
    path = overrides_path(workspace, faceset_rel)
    data = dataclasses.asdict(OverrideFile(override=rules))
    data["override"] = [{k: v for k, v in rule.items() if v is not None} for rule in data["override"]]
    atomic_write_json(path, data)
    atomic_write_json(path.with_suffix(".session.json"), {"keys": keys, "ranges": ranges})
    load_overrides(path)  # the file merge will read parses back
    return {"overrides": path.relative_to(workspace).as_posix(), "rules": data["override"]}


def load_session(workspace: Path, faceset_rel: str) -> dict[str, Any]:
    """The saved keys and ranges (empty when none), and the overrides file's path."""
    import json

    path = overrides_path(workspace, faceset_rel)
    session_file = path.with_suffix(".session.json")
    session = {"keys": [], "ranges": []}
    if session_file.is_file():
        try:
            session = json.loads(session_file.read_text("utf-8"))
        except ValueError:
            raise InputError(f"{session_file} is not valid JSON") from None
    rules = [{k: v for k, v in dataclasses.asdict(r).items() if v is not None} for r in load_overrides(path)] \
        if path.is_file() else []
    return {**session, "overrides": path.relative_to(workspace).as_posix() if path.is_file() else None,
            "rules": rules}


def effective(rules: list[OverrideRule], index: int) -> dict[str, Any]:
    """The settings frame `index` gets from the saved rules (what the panel shows when scrubbing there)."""
    return dataclasses.asdict(Overrides(FaceSettings(), rules).for_frame(index))
