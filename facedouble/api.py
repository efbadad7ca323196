"""facedouble's Python API: one function per pipeline step, shared by the CLI, the studio and scripts.

    from facedouble import api
    api.extract("plate.mp4", "work/dst", size=128)                 # -> ExtractReport
    api.sort_faceset("work/src", "blur", reject_worst=5)           # curate -> SortResult
    api.identity_add("ws", "jane", "release.pdf", reference="jane_session/")  # faces from the release session
    api.identity_bind("ws", "jane", "work/src")
    api.certs_init("ws")                                           # a local test signer in ws/certs
    api.train_start("work/model", "work/src", "work/dst", preset="tiny", iterations=50, workspace="ws")
    api.train_status("work/model")                                 # running?, iteration, loss
    api.merge_preview("work/model", "work/dst", 12, workspace="ws")  # marked RGB frame (numpy)
    api.merge_render("work/model", "work/dst", "shot.mp4", workspace="ws")  # guarded, watermarked, signed
    api.verify("shot.mp4")                                         # the `verify` report (dict)
    api.report("shot.mp4", "plate.mp4", "work/src")                # quality report (dict, HTML page)

Settings are the stages' config dataclasses (ExtractConfig, TrainConfig/ModelConfig, MergeConfig,
ReportConfig), given as an instance, or as keyword settings / a dict by TOML key; every value is
validated (one-line FacedoubleError). Errors are the classes of `facedouble.errors` (UsageError,
InputError, PolicyError, InternalError), whose `exit_code` the CLI returns. Long steps take
`progress=`, a callable receiving `facedouble.progress.Progress` events (the CLI draws them as tqdm
bars, the studio streams `event.to_dict()`).

Trust is not optional here either: training needs a consented source faceset, and every merge render and
preview re-checks the model's consent against the workspace's record and carries the provenance marks
(content guard, watermark, visible label, render record, C2PA signature with the workspace's or the given
certificate).

Stage modules are imported inside the functions, so `import facedouble.api` stays cheap.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facedouble.config import from_dict, to_dict, validated
from facedouble.errors import InputError, UsageError
from facedouble.log import get_logger
from facedouble.progress import Progress, ProgressCallback
from facedouble.progress import report as _report

if TYPE_CHECKING:
    import numpy as np

    from facedouble.extract.pipeline import ExtractConfig, ExtractReport
    from facedouble.faceset.curate import SortResult
    from facedouble.merge.pipeline import MergeConfig, MergeResult

log = get_logger("facedouble.api")

PathLike = str | os.PathLike
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv")


def _config(cls: type, config: Any, settings: dict[str, Any]) -> Any:
    """`config` (an instance or a dict by TOML key, or None for the defaults) with `settings` on top, validated."""
    if config is None:
        data: dict[str, Any] = {}
    elif isinstance(config, dict):
        data = dict(config)
    elif isinstance(config, cls):
        data = to_dict(config)
    else:
        raise UsageError(f"config must be a {cls.__name__} or a dict, got {type(config).__name__}")
    data.update({k: v for k, v in settings.items() if v is not None})
    return validated(from_dict(cls, data))


def workspace_path(workspace: PathLike | None) -> Path:
    """The workspace folder: the given one, else $FACEDOUBLE_WORKSPACE, else ./facedouble-workspace."""
    from facedouble.consent.records import default_workspace

    return Path(workspace) if workspace is not None else default_workspace()


# -- extract and curate -------------------------------------------------------------------------------

def extract(source: PathLike, faceset: PathLike, config: ExtractConfig | dict | None = None, *,
            progress: ProgressCallback | None = None, **settings: Any) -> ExtractReport:
    """Detect, track and align every face of a video or image folder into the faceset folder `faceset`.

    Resumes an interrupted run into the same folder. `settings` are ExtractConfig keys (size=128, ...).
    `progress` gets a start and a final event (frames); the CLI's per-frame bar is ExtractConfig.progress.
    """
    from facedouble.extract.pipeline import ExtractConfig
    from facedouble.extract.pipeline import extract as run_extract

    cfg = _config(ExtractConfig, config, settings)
    _report(progress, Progress("extract", 0, None, "frame", f"{source} -> {faceset}"))
    result = run_extract(source, faceset, cfg)
    _report(progress, Progress("extract", result.frames_read, result.frames_read, "frame",
                               f"{result.faces_written} faces written", finished=True))
    return result


def sort_faceset(faceset: PathLike, by: str, *, minimum: float | None = None, maximum: float | None = None,
                 reject_worst: float = 0.0, reference: PathLike | None = None, dry_run: bool = False) -> SortResult:
    """Curate: rank faces by metric `by` and move rejects to FACESET/_rejected/<by>/ (never deleted)."""
    from facedouble.faceset.curate import sort_faceset as run_sort

    embedding = None
    if reference is not None and by == "identity":  # curate measures to an embedding; extract finds the face
        from facedouble.extract.identity import IdentityEmbedder
        from facedouble.extract.pipeline import reference_embedding

        embedding = reference_embedding(reference, IdentityEmbedder())
    return run_sort(faceset, by, minimum=minimum, maximum=maximum, reject_worst=reject_worst,
                    reference=embedding, dry_run=dry_run)


def faceset_stats(faceset: PathLike) -> dict[str, Any]:
    """Counts and metric percentiles of a faceset."""
    from facedouble.faceset.curate import faceset_stats as stats

    return stats(faceset)


# -- mask labels --------------------------------------------------------------------------------------

def mask_labels_export(faceset: PathLike, file: PathLike) -> int:
    """Write the hand-drawn mask labels of every labelled face to a JSON file; returns how many faces."""
    from facedouble.mask.labelfile import export_labels

    return export_labels(faceset, file)


def mask_labels_import(faceset: PathLike, file: PathLike) -> int:
    """Store the labels of a JSON file in the faces (all validated before any is written); returns how many."""
    from facedouble.mask.labelfile import import_labels

    return import_labels(faceset, file)


# -- consent and signing (trust) ----------------------------------------------------------------------

def identity_add(workspace: PathLike | None, name: str, release: PathLike, *, scope: str = "",
                 expires: str | None = None, notes: str = "", reference: PathLike | None = None) -> Any:
    """Record a performer's signed release (its SHA-256) as consent record `name`; returns the record.

    `reference`: faces of the person who signed (faceset, clip, image or folder); without them no faceset can
    be bound to the record (facedouble.consent.person)."""
    from facedouble.consent import records as consent

    return consent.add_identity(workspace_path(workspace), name, Path(release), scope=scope, expires=expires,
                                notes=notes, reference=Path(reference) if reference is not None else None)


def identity_bind(workspace: PathLike | None, name: str, faceset: PathLike) -> Any:
    """Bind a faceset folder to consent record `name` (training on it needs this)."""
    from facedouble.consent import records as consent

    return consent.bind_faceset(workspace_path(workspace), name, Path(faceset))


def certs_init(workspace: PathLike | None = None, out: PathLike | None = None) -> tuple[Path, Path]:
    """A local test signing certificate in WORKSPACE/certs (or `out`); returns (certificate, key)."""
    from facedouble.trust.c2pa_sign import init_test_ca
    from facedouble.trust.render import CERTS_DIR

    return init_test_ca(Path(out) if out is not None else workspace_path(workspace) / CERTS_DIR)


# -- train --------------------------------------------------------------------------------------------

def _split_train_settings(model: Any, train: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    from facedouble.train.models.presets import ModelConfig
    from facedouble.train.trainer import TrainConfig

    def as_dict(value: Any, cls: type) -> dict[str, Any]:
        if value is None:
            return {}
        if isinstance(value, cls):
            return to_dict(value)
        if isinstance(value, dict):
            from_dict(cls, {k: v for k, v in value.items() if v is not None})  # unknown keys: one line, now
            return dict(value)
        raise UsageError(f"expected a {cls.__name__} or a dict, got {type(value).__name__}")

    return as_dict(model, ModelConfig), as_dict(train, TrainConfig)


def train_start(model_dir: PathLike, src: PathLike, dst: PathLike | list[PathLike] | None = None, *,
                preset: str | None = None,
                model: Any = None, train: Any = None, workspace: PathLike | None = None,
                iterations: int | None = None, background: bool = False,
                progress: ProgressCallback | None = None) -> dict[str, Any] | TrainProcess:
    """Train (or resume) the model in `model_dir` on faceset `src` (consent needed) and `dst` (one faceset, or
    a list: a DF model with one decoder per dst faceset, the first being the target).

    `preset`/`model` (ModelConfig or dict) shape a new model; `train` (TrainConfig or dict) sets the
    training options. `iterations` stops after that many more iterations. In-process (the default) it
    returns the run's summary when done, reporting each iteration to `progress`; `background=True` starts
    `facedouble train` as a child process instead and returns a TrainProcess (stop it with `train_stop`).
    """
    model_over, train_over = _split_train_settings(model, train)
    if iterations is not None:
        if iterations < 1:
            raise UsageError(f"iterations must be >= 1, got {iterations}")
        train_over["max_iters"] = train_status(model_dir).get("iteration", 0) + iterations
    if background:
        return _train_in_background(model_dir, src, dst, preset, model_over, train_over, workspace)
    from facedouble.train.trainer import Trainer

    trainer = Trainer.create(model_dir, src, dst, preset, model_over, train_over, workspace)
    total = trainer.cfg.max_iters or None
    step = trainer.step

    def reporting_step(batch: Any) -> tuple[float, float]:
        losses = step(batch)
        _report(progress, Progress("train", trainer.iteration + 1, total, "iter",
                                   f"src {losses[0]:.4f} dst {losses[1]:.4f}",
                                   info={"loss_src": losses[0], "loss_dst": losses[1]}))
        return losses

    trainer.step = reporting_step  # this trainer only: the loop calls self.step once per iteration
    from facedouble.train.ddp import end_process_group

    finished = False
    try:
        summary = trainer.run()
        finished = True
    finally:
        end_process_group(finished)
    _report(progress, Progress("train", summary["iteration"], total, "iter", "saved", finished=True,
                               info={k: v for k, v in summary.items() if k != "loss"}))
    return summary


@dataclasses.dataclass
class TrainProcess:
    """A `facedouble train` child process started by `train_start(background=True)`."""

    model_dir: Path
    process: subprocess.Popen
    log_file: Path

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.process.pid

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the child to end; its exit code (facedouble.errors)."""
        return self.process.wait(timeout)


def _train_in_background(model_dir: PathLike, src: PathLike, dst: PathLike | list[PathLike] | None,
                         preset: str | None,
                         model_over: dict[str, Any], train_over: dict[str, Any],
                         workspace: PathLike | None) -> TrainProcess:
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "facedouble", "train", "--src", str(src), "--model", str(model_dir)]
    for one in [] if dst is None else dst if isinstance(dst, (list, tuple)) else [dst]:
        cmd += ["--dst", str(one)]
    cmd += ["--preset", preset] if preset else []
    cmd += ["--workspace", str(workspace)] if workspace is not None else []
    for key, value in {**model_over, **train_over}.items():
        if value is not None:
            cmd += ["--set", f"{key}={json.dumps(value)}"]  # JSON scalars are TOML scalars
    log_file = model_dir / "train.log"
    with open(log_file, "ab") as out:  # noqa: PTH123 - handed to the child
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return TrainProcess(model_dir, process, log_file)


def _lock_holder(model_dir: Path) -> int | None:
    """The pid of the trainer holding `model_dir`'s lock, or None when no trainer runs on it."""
    path = model_dir / ".lock"
    if not path.exists():
        return None
    with open(path, encoding="utf-8") as f:  # noqa: PTH123 - flock needs the file object
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = f.read().strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(f, fcntl.LOCK_UN)
    return None


def train_status(model_dir: PathLike) -> dict[str, Any]:
    """{"running", "pid", "iteration", "last_loss", "model", "train", ...} of a model folder (iteration 0: none yet)."""
    from facedouble.nn import checkpoint as ck

    model_dir = Path(model_dir)
    pid = _lock_holder(model_dir) if model_dir.is_dir() else None
    status: dict[str, Any] = {"model_dir": str(model_dir), "running": pid is not None, "pid": pid, "iteration": 0}
    if ck.has_checkpoint(model_dir):
        status.update({k: v for k, v in model_info(model_dir).items() if k != "model_dir"})
    return status


def train_stop(model_dir: PathLike, timeout: float = 120.0) -> bool:
    """Ask the trainer running on `model_dir` to save and stop (as Ctrl-C does); True once it has.

    False when no trainer runs there. A trainer in this very process cannot be stopped this way."""
    model_dir = Path(model_dir)
    pid = _lock_holder(model_dir)
    if pid is None:
        return False
    if pid <= 0 or pid == os.getpid():
        raise UsageError(f"cannot stop the trainer of {model_dir} (pid {pid}) from here")
    os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _lock_holder(model_dir) is None:
            return True
        time.sleep(0.2)
    return False


def model_info(model_dir: PathLike) -> dict[str, Any]:
    """A trained model's config, iteration, parameter count, consent, weights hash and last loss."""
    from facedouble.nn import checkpoint as ck

    state = ck.load_state(model_dir)
    ckpt, files = ck.checkpoint_dir(model_dir)
    hist = state.get("loss_history") or []
    return {"model_dir": str(model_dir), "checkpoint": ckpt.name, "iteration": state["iteration"],
            "model": state["model"], "train": state["train"], "param_count": state.get("param_count"),
            "consent": state.get("consent"), "model_hash": files[ck.WEIGHTS],
            "last_loss": {"src": hist[-1][1], "dst": hist[-1][2]} if hist else None,
            "src": state.get("src"), "dst": state.get("dst"), "world_size": state.get("world_size", 1)}


# -- merge --------------------------------------------------------------------------------------------

def load_model(model: Any, config: MergeConfig) -> Any:
    """A loaded swapper: `model` itself if it already is one, else the model folder loaded at the config's
    precision and conv algorithm."""
    if not isinstance(model, (str, os.PathLike)):
        return model
    from facedouble.merge.model import load_model as load

    device = {"device": config.device} if getattr(config, "device", "cpu") != "cpu" else {}  # cpu: the default
    return load(model, precision=config.precision, conv_algo=config.conv, **device)


def merge_outputs(out: PathLike, *, png_dir: PathLike | None = None, matte_dir: PathLike | None = None,
                  transforms: PathLike | None = None, patch_dir: PathLike | None = None) -> Any:
    """merge's Outputs: OUT ending in .mp4/.mov/.mkv is a video, anything else a PNG folder."""
    from facedouble.io.sequence import is_sequence_pattern
    from facedouble.merge.pipeline import Outputs

    out = Path(out)
    video = out if out.suffix.lower() in VIDEO_SUFFIXES else None
    sequence = out if video is None and is_sequence_pattern(out) else None  # out/shot.%04d.exr (or ####)
    png = Path(png_dir) if png_dir else (None if video or sequence else out)
    return Outputs(video=video, png_dir=png, matte_dir=Path(matte_dir) if matte_dir else None,
                   transforms=Path(transforms) if transforms else None, sequence=sequence,
                   patch_dir=Path(patch_dir) if patch_dir else None)


def _target(target: PathLike, model: Any, work_dir: Path | None, faceset: PathLike | None, clip: PathLike | None,
            progress_bars: bool) -> tuple[Path, str | None]:
    """(faceset folder, clip or None) of a merge target; a bare clip is extracted into WORK_DIR/target-faceset."""
    from facedouble.io.sequence import find_sequence

    target = Path(target)
    if target.is_dir() and find_sequence(target) is None:  # a folder of EXR/DPX/... frames is the clip
        return target, str(clip) if clip else None
    if not target.exists():
        raise InputError(f"target not found: {target}")
    if faceset:
        return Path(faceset), str(clip or target)
    from facedouble.extract.pipeline import ExtractConfig
    from facedouble.extract.pipeline import extract as run_extract

    # Resumable like the render itself: a re-run skips the frames already extracted.
    if work_dir is None:
        raise UsageError("a clip as target needs its faceset, or a work folder to extract it into")
    found = Path(work_dir) / "target-faceset"
    log.info("extracting the target's faces into %s", found)
    run_extract(target, found, ExtractConfig(face_type=model.face_type, size=int(model.resolution),
                                             progress=progress_bars))
    return found, str(target)


def merge_preview(model: Any, target: PathLike, frame: int, *, workspace: PathLike | None = None,
                  config: MergeConfig | dict | None = None, overrides: PathLike | list | None = None,
                  clip: PathLike | None = None, label: str | None = None, faceset: PathLike | None = None,
                  work_dir: PathLike | None = None, **settings: Any) -> np.ndarray:
    """Frame `frame` of the target swapped and marked (consent re-checked, watermark, "SYNTHETIC PREVIEW"
    label); an RGB uint8 array. `model` is a model folder or a loaded swapper; `target` a faceset folder,
    or a clip (with `faceset` naming its faceset, or extracted into `work_dir` first)."""
    from facedouble.merge.pipeline import MergeConfig
    from facedouble.trust.render import check_consent, render_preview

    cfg = _config(MergeConfig, config, settings)
    swapper = load_model(model, cfg)
    check_consent(swapper, workspace)
    faceset, clip_path = _target(target, swapper, Path(work_dir) if work_dir else None, faceset, clip, False)
    return render_preview(swapper, faceset, frame, workspace=workspace, config=cfg, rules=_rules(overrides),
                          clip=clip_path, label=label)


def _rules(overrides: PathLike | list | None) -> list:
    if overrides is None or isinstance(overrides, list):
        return overrides or []
    from facedouble.merge.overrides import load_overrides

    return load_overrides(overrides)


def _provenance(workspace: PathLike | None, cert: PathLike | None, key: PathLike | None, label: str | None,
                model_hash: str, clip: Path, settings: dict, fps: float, frame_count: int | None,
                first_number: int = 0) -> Any:
    """Guard, watermark, label, record and signature of one render (the same for every shard)."""
    from facedouble.trust.render import RenderProvenance, find_signer

    folder = workspace_path(workspace)
    cert_path, key_path = find_signer(folder, cert, key)
    # the watermark is keyed by the workspace's secret: the same workspace verifies it
    return RenderProvenance.for_render(model_hash=model_hash, clip=clip, settings=settings, fps=fps,
                                       frame_count=frame_count, cert=cert_path, key=key_path, label=label,
                                       workspace=folder, first_number=first_number)


def _progress_hook(progress: ProgressCallback | None, total: int | None) -> Any:
    """A post-composite hook that reports each written frame (runs after the provenance hooks)."""
    def hook(ctx: Any) -> None:
        if not ctx.warmup:
            _report(progress, Progress("merge", ctx.index + 1, total, "frame"))
    return hook


def merge_render(model: Any, target: PathLike, out: PathLike, *, workspace: PathLike | None = None,
                 config: MergeConfig | dict | None = None, overrides: PathLike | list | None = None,
                 faceset: PathLike | None = None, clip: PathLike | None = None, png_dir: PathLike | None = None,
                 matte_dir: PathLike | None = None, transforms: PathLike | None = None,
                 patch_dir: PathLike | None = None, cert: PathLike | None = None, key: PathLike | None = None,
                 label: str | None = None,
                 shard: tuple[int, int] = (1, 1), fresh: bool = False, progress: ProgressCallback | None = None,
                 log_progress: bool = False, **settings: Any) -> MergeResult | None:
    """Render the target with the model's faces into `out` (video file or PNG folder), with every provenance
    mark: consent re-checked against the workspace, content guard, watermark, optional visible label, render
    record and C2PA signature (WORKSPACE/certs or `cert`/`key`). Resumes; `shard=(i, n)` renders part i of n
    and returns None (then `merge_concat`). `target` is a faceset folder, or a clip (extracted first unless
    `faceset` names its faceset). Returns the MergeResult."""
    from facedouble.merge import pipeline
    from facedouble.trust.render import check_consent

    cfg = _config(pipeline.MergeConfig, config, settings)
    rules = _rules(overrides)
    swapper = load_model(model, cfg)
    # Before anything is extracted or rendered: an expired or withdrawn consent renders nothing.
    check_consent(swapper, workspace)
    outputs = merge_outputs(out, png_dir=png_dir, matte_dir=matte_dir, transforms=transforms, patch_dir=patch_dir)
    faceset_dir, clip_path = _target(target, swapper, outputs.work_dir(), faceset, clip,
                                     log_progress or progress is not None)
    plan = pipeline.load_plan(swapper, faceset_dir, cfg, clip_path)
    marks = _provenance(workspace, cert, key, label, swapper.model_hash, plan.clip, to_dict(cfg), float(plan.fps),
                        plan.frame_count, plan.info.first_number)
    hooks = marks.hooks()
    if progress is not None:
        hooks.post_composite.append(_progress_hook(progress, plan.frame_count))
    result = pipeline.merge(swapper, faceset_dir, outputs, cfg, rules, clip_path, shard, hooks=hooks, fresh=fresh,
                            progress=log_progress, plan=plan)
    _report(progress, Progress("merge", result.frames if result else plan.frame_count or 0, plan.frame_count,
                               "frame", finished=True))
    return result


def merge_concat(out: PathLike, *, workspace: PathLike | None = None, cert: PathLike | None = None,
                 key: PathLike | None = None, label: str | None = None, png_dir: PathLike | None = None,
                 matte_dir: PathLike | None = None, transforms: PathLike | None = None,
                 patch_dir: PathLike | None = None) -> MergeResult:
    """Join the shards' segments into `out` and finalize it (record, C2PA); consent is re-checked first."""
    from facedouble.merge import pipeline

    outputs = merge_outputs(out, png_dir=png_dir, matte_dir=matte_dir, transforms=transforms, patch_dir=patch_dir)
    plan_file = outputs.work_dir() / pipeline.PLAN_FILE
    state = json.loads(plan_file.read_text(encoding="utf-8")) if plan_file.exists() else None
    marks = None
    if state:  # the shards were rendered earlier: consent withdrawn since then stops the join too
        from facedouble.consent.records import check_model_consent

        check_model_consent(state.get("consent"), Path(workspace) if workspace else None)
        marks = _provenance(workspace, cert, key, label, state["model_hash"], Path(state["clip"]),
                            state["settings"], state.get("fps") or 25.0, state.get("frame_count"))
    return pipeline.finalize(outputs, marks.hooks() if marks else None)


# -- verify and report --------------------------------------------------------------------------------

def verify(path: PathLike, *, workspace: PathLike | None = None, key_file: PathLike | None = None,
           trust_anchors: PathLike | None = None) -> dict[str, Any]:
    """Check a video or image for facedouble's marks: C2PA manifest, watermark, render record.

    The watermark is looked for with the workspace's watermark key (or `key_file`), the C2PA signer checked
    against the workspace's trust anchors (or `trust_anchors`, a PEM file). The report's "exit_code" is
    `facedouble verify`'s: 0 marked, 1 not marked, 3 unreadable, 5 tampered, 6 partially marked."""
    from facedouble.trust.verify import verify_file

    return verify_file(Path(path), key_file=key_file, trust_anchors=trust_anchors,
                       workspace=workspace_path(workspace))


def report(render: PathLike, target: PathLike, source: PathLike, out: PathLike | None = None,
           config: Any = None, **settings: Any) -> tuple[dict[str, Any], Path]:
    """Quality report of a render against its target clip and the source identity: (report, HTML page).

    Written to `out` (default: RENDER's name + "-report"); `settings` are ReportConfig keys."""
    from facedouble.report.build import ReportConfig, build_report
    from facedouble.report.html import write_report

    cfg = _config(ReportConfig, config, settings)
    result = build_report(render, target, source, cfg)
    folder = Path(out) if out else Path(render).with_name(Path(render).stem + "-report")
    return result, write_report(result, folder)
