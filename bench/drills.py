"""Kill drills: `python -m bench.drills [--points 20] [--stages extract,train,merge,mask-train,studio] [--seed 0]`.

Each stage runs uninterrupted (the reference; twice, to check it is deterministic), then N times killed with
SIGKILL at a random point of its run (stratified over the first 90 % of the reference's wall time: point i
of N falls in the i-th N-th of it; train's and merge's last point is instead the moment their result is
published: latest.json, the render) and re-run to completion. A drill survives when:
* right after the kill, nothing a user would pick up is half-written: every face file on disk equals the
  reference's, a published checkpoint loads and verifies, a render under its final name is complete and
  signed, the studio's job records parse;
* the re-run exits 0 and its result equals the reference: extract's face files byte for byte (images and
  their metadata); train and mask train, resumed to the same iteration, the same weights byte for byte and
  the same optimizer state (train: and loss curve), which both promise ("resumes exactly"); merge the same
  frame count, timestamps, audio packets and decoded pixels (its C2PA manifest and render record differ:
  they carry the time);
* no temporary or partial file is left after the re-run (`*.tmp*`, unpublished checkpoint folders).

Stages run as the `facedouble` command line in processes forked from a server that has imported facedouble
once (`_zygote`), so a drill costs the stage's work, not Python's start-up; the studio stage starts real
studio jobs (`facedouble.studio.jobs.JobRunner`: supervisor + `python -P -m facedouble extract`) and kills
the job's whole process group. Footage: 12-frame excerpts of two GRID clips (the target with a synthetic AAC
track, so the audio copy is checked), 64 px faces, the `tiny` preset shrunk to 32 px and 0.6 M parameters,
a 64 px segmenter; a consent record and a test signer in a scratch workspace.

Prints a table: stage, drills run, kills that landed mid-run, survived, files lost or corrupted, partial
files left (the last two must be 0). Exit status 1 when any drill failed.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

GRID_DIR = Path(os.environ.get("FACEDOUBLE_GRID_DIR", ROOT.parent / "shared" / "data" / "grid"))
STAGES = ("extract", "train", "merge", "mask-train", "studio")


@dataclasses.dataclass(frozen=True)
class Size:
    """How big the drilled jobs are: frames of footage, training iterations, and whether the references run
    twice (to check that the stage is deterministic before comparing drills with it)."""

    frames: int = 12
    train_iters: int = 16
    mask_iters: int = 16
    twice: bool = True


SMALL = Size(frames=8, train_iters=6, mask_iters=6, twice=False)  # the CI test's
PRELOAD = ["facedouble.cli", "facedouble.extract.pipeline", "facedouble.train.trainer", "facedouble.merge.pipeline",
           "facedouble.mask.segmenter.train", "facedouble.trust.render", "facedouble.api"]
CPU = "Intel Xeon (Sapphire Rapids class), 2 cores shared with other jobs, AVX-512 BF16 + AMX"


# -- running a stage ------------------------------------------------------------------------------------------

def _zygote() -> None:
    """The fork server: imports facedouble once, then for each request on stdin (JSON: argv, log) forks a
    child that runs `facedouble ARGV` with its output in LOG, replies {"pid"}, waits, replies {"code"}."""
    import importlib
    import traceback

    for name in PRELOAD:
        importlib.import_module(name)
    from facedouble.cli import build_parser

    build_parser()  # imports every stage's command-line module
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:  # the stage process
            code = 70
            try:
                fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
                from facedouble.cli import main

                code = main(request["argv"])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 2
            except BaseException:  # noqa: BLE001 - reported in the log, exit 70 like an internal error
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"code": os.waitstatus_to_exitcode(status)}), flush=True)


class Launcher:
    """Runs `facedouble` commands in processes forked from a server that has imported facedouble (`_zygote`):
    a drill then costs the stage's work, not Python's and torch's start-up."""

    def __init__(self) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        self.proc = subprocess.Popen([sys.executable, "-c", "from bench.drills import _zygote; _zygote()"],
                                     cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def _reply(self, timeout: float | None = None) -> dict | None:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the drill fork server stopped")
        return json.loads(line)

    def start(self, argv: list[str], log: Path) -> int:
        """Start `facedouble ARGV` (output in `log`); returns its pid. `wait` must follow."""
        self.proc.stdin.write(json.dumps({"argv": argv, "log": str(log)}) + "\n")
        self.proc.stdin.flush()
        return int(self._reply()["pid"])

    def wait(self, timeout: float | None = None) -> int | None:
        """The started command's exit status (negative: killed by that signal); None if still running."""
        reply = self._reply(timeout)
        return None if reply is None else int(reply["code"])

    def run(self, argv: list[str], log: Path, kill_after: float | None = None) -> tuple[int | None, float, bool]:
        """(exit code, seconds, killed): runs `argv`, SIGKILLing it after `kill_after` seconds if still running."""
        t0 = time.monotonic()
        pid = self.start(argv, log)
        code = self.wait(kill_after)
        killed = code is None
        if killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self.wait()
        return (None if killed else code), time.monotonic() - t0, killed

    def close(self) -> None:
        """Stop the fork server."""
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()


# -- footage and fixtures ---------------------------------------------------------------------------------------

def _grid(stem: str) -> Path:
    path = GRID_DIR / f"{stem}.mpg"
    if not path.exists():
        raise SystemExit(f"GRID footage not found at {GRID_DIR}")
    return path


def write_clip(out: Path, stem: str, frames: int, audio: bool) -> Path:
    """The first `frames` frames of GRID `stem` as H.264 MP4 (one encoder thread: reproducible), with a
    synthetic stereo AAC track (a tone with a slow sweep) as long as the video when `audio`."""
    import av
    import numpy as np

    from facedouble.io.video import open_source

    images = [f.image for f in open_source(_grid(stem))][:frames]
    with av.open(str(out), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = images[0].shape[1], images[0].shape[0], "yuv420p"
        video.options = {"crf": "14", "threads": "1"}
        sound = None
        if audio:
            sound = container.add_stream("aac", rate=48000)
            sound.layout = "stereo"
        for image in images:
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode())
        if sound is not None:
            n = int(48000 * frames / 25)
            t = np.arange(n) / 48000
            tone = (0.2 * np.sin(2 * np.pi * (300 + 200 * t) * t)).astype(np.float32)
            for start in range(0, n, 1024):
                chunk = np.stack([tone[start:start + 1024]] * 2)
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="stereo")
                frame.sample_rate, frame.pts = 48000, start
                container.mux(sound.encode(frame))
            container.mux(sound.encode())
    return out


def label_faceset(src: Path, out: Path) -> Path:
    """A copy of faceset `src` with mask labels (the mesh's face oval, a mouth-sized hole on every other face)."""
    import numpy as np

    from facedouble.face.mesh import FACE_OVAL
    from facedouble.faceset import Faceset
    from facedouble.mask import FaceLabels, write_labels

    shutil.copytree(src, out, ignore=shutil.ignore_patterns(".*"))
    for i, (path, meta) in enumerate(Faceset(out).metas()):
        mesh = meta.mesh @ meta.transform[:, :2].T + meta.transform[:, 2]
        exclude = []
        if i % 2 == 0:
            c = meta.aligned_landmarks[48:68].mean(0)
            exclude = [np.array([c + (-10, -5), c + (10, -5), c + (10, 8), c + (-10, 8)])]
        write_labels(path, FaceLabels([mesh[list(FACE_OVAL)]], exclude))
    return out


def workspace(root: Path, src_faces: Path) -> Path:
    """A workspace with a test signer and a consent record bound to `src_faces`."""
    from facedouble import api

    ws = root / "workspace"
    release = root / "release.txt"
    release.write_text("Drill consent: GRID speaker bbaf2n (CC BY 4.0), for facedouble's kill drills.\n")
    api.identity_add(ws, "drill-source", release, scope="kill drills", reference=src_faces)
    api.identity_bind(ws, "drill-source", src_faces)
    api.certs_init(ws)
    return ws


# -- what is compared ---------------------------------------------------------------------------------------

def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def temp_files(folder: Path) -> list[str]:
    """Temporary files (atomic writes' `.NAME.XXXX.tmp*`) anywhere under `folder`."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and ".tmp" in p.name)


def faces_of(folder: Path) -> dict[str, str]:
    """Face file name -> sha256 (image and embedded metadata)."""
    if not folder.is_dir():
        return {}
    return {p.name: _sha(p) for p in folder.iterdir() if p.suffix in (".png", ".jpg") and not p.name.startswith(".")}


def checkpoint_of(model: Path) -> dict:
    """The published checkpoint's iteration and files' sha256 (verified by loading it), plus loss.csv."""
    from facedouble.nn.checkpoint import LATEST, load_checkpoint

    latest = json.loads((model / LATEST).read_text())
    ckpt = load_checkpoint(model)  # every file's sha256 is checked
    # training.safetensors by content: safetensors writes its metadata map in a random order (a Rust
    # HashMap), so two identical optimizer states differ in the bytes of the header
    training = hashlib.sha256()
    for name in sorted(ckpt.optimizers):
        opt = ckpt.optimizers[name]
        training.update(json.dumps([name, opt["param_groups"]], sort_keys=True).encode())
        for pid in sorted(opt["state"]):
            for key in sorted(opt["state"][pid]):
                value = opt["state"][pid][key]
                training.update(f"{pid}/{key}".encode())
                training.update(value.numpy().tobytes() if hasattr(value, "numpy") else repr(value).encode())
    for name in sorted(ckpt.aux_weights):
        for key in sorted(ckpt.aux_weights[name]):
            training.update(f"{name}/{key}".encode() + ckpt.aux_weights[name][key].numpy().tobytes())
    got = {"iteration": latest["iteration"], "weights": latest["files"]["weights.safetensors"],
           "training": training.hexdigest()}
    if (model / "loss.csv").exists():
        got["loss.csv"] = _sha(model / "loss.csv")
    return got


def unpublished_checkpoints(model: Path) -> list[str]:
    """Checkpoint folders latest.json does not list (a save that was cut short)."""
    from facedouble.nn.checkpoint import LATEST

    if not (model / LATEST).exists():
        return sorted(p.name for p in model.glob("ckpt-*"))
    history = set(json.loads((model / LATEST).read_text()).get("history", []))
    return sorted(p.name for p in model.glob("ckpt-*") if p.name not in history)


def render_of(video: Path) -> dict:
    """A render's frame count, timestamps, pixels (sha256 of the decoded frames), audio packets; signed?"""
    import av

    from facedouble.trust.c2pa_sign import has_manifest_bytes

    digest, times = hashlib.sha256(), []
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            times.append(str(Fraction(frame.pts) * frame.time_base))
            digest.update(frame.to_ndarray(format="rgb24").tobytes())
        audio = hashlib.sha256()
        if container.streams.audio:
            for packet in container.demux(audio=0):
                if packet.size:
                    audio.update(f"{packet.pts}:".encode() + bytes(packet))
    return {"frames": len(times), "timestamps": times, "pixels": digest.hexdigest(), "audio": audio.hexdigest(),
            "signed": has_manifest_bytes(video)}


# -- stages ---------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Stage:
    """One drilled stage: how to run it into a fresh output, and how to check what it left."""

    name: str
    argv: Callable[[Path], list[str]]  # output folder -> command line
    result: Callable[[Path], dict]  # output folder -> what must equal the reference
    after_kill: Callable[[Path, dict], list[str]]  # (output, reference result) -> problems right after a kill
    leftovers: Callable[[Path], list[str]]  # output -> temp/partial files left after the re-run
    # output -> a file whose appearance marks a critical moment (a result published): one more drill kills
    # the stage the moment it appears
    watch: Callable[[Path], Path] | None = None


@dataclasses.dataclass
class Outcome:
    stage: str
    drills: int = 0
    hit: int = 0  # kills that landed before the run finished
    survived: int = 0
    lost: int = 0  # files lost or corrupted
    partial: int = 0  # temp or partial files left
    problems: list[str] = dataclasses.field(default_factory=list)


def make_stages(fx: dict[str, Path], size: Size) -> dict[str, Stage]:
    """The drilled stages over the fixtures `fx` (clip, src_faces, workspace, model, labelled)."""
    extract_argv = lambda out: ["extract", str(fx["clip"]), str(out / "faces"), "--size", "64",  # noqa: E731
                                "--embed-every", "4", "--no-progress"]

    def extract_kill(out: Path, ref: dict) -> list[str]:
        got = faces_of(out / "faces")
        return [f"face {n} differs from the reference (half-written?)" for n, h in got.items() if ref.get(n) != h]

    def model_kill(model: Path, ref: dict) -> list[str]:
        from facedouble.nn.checkpoint import LATEST

        if not (model / LATEST).exists():
            return []
        try:
            checkpoint_of(model)
        except Exception as exc:  # noqa: BLE001 - any failure to load the published checkpoint is the finding
            return [f"published checkpoint does not load: {type(exc).__name__}: {exc}"]
        return []

    def model_left(model: Path) -> list[str]:
        return temp_files(model) + unpublished_checkpoints(model)

    def merge_kill(out: Path, ref: dict) -> list[str]:
        video = out / "render.mp4"
        if not video.exists():
            return []
        try:
            got = render_of(video)
        except Exception as exc:  # noqa: BLE001
            return [f"render.mp4 under its final name does not decode: {exc}"]
        return [f"render.mp4 under its final name differs from the reference in {k}"
                for k in got if got[k] != ref[k]]

    def merge_left(out: Path) -> list[str]:
        return temp_files(out)

    def studio_kill(out: Path, ref: dict) -> list[str]:
        from facedouble.studio.jobs import JobRunner

        problems = extract_kill(out, ref)
        try:
            JobRunner(fx["workspace"]).list()
        except Exception as exc:  # noqa: BLE001
            problems.append(f"job records unreadable after the kill: {exc}")
        return problems

    return {
        "extract": Stage("extract", extract_argv, lambda out: faces_of(out / "faces"), extract_kill,
                         lambda out: temp_files(out)),
        "train": Stage("train", lambda out: [
            "train", "--src", str(fx["src_faces"]), "--dst", str(fx["dst_faces"]), "--model", str(out / "model"),
            "--preset", "tiny", "--resolution", "32", "--ae-dims", "16", "--e-dims", "8",
            "--d-dims", "8", "--d-mask-dims", "4", "--workspace", str(fx["workspace"]),
            "--max-iters", str(size.train_iters), "--batch-size", "4", "--workers", "0", "--threads", "2",
            "--save-every-min", "0.006",
            "--preview-every-min", "1000", "--optimizer-kernel", "eager", "--no-bf16"],
            lambda out: checkpoint_of(out / "model"), lambda out, ref: model_kill(out / "model", ref),
            lambda out: model_left(out / "model"), lambda out: out / "model" / "latest.json"),
        "merge": Stage("merge", lambda out: [
            "merge", "--model", str(fx["model"]), "--target", str(fx["dst_faces"]), "--out", str(out / "render.mp4"),
            "--workspace", str(fx["workspace"]), "--segment-frames", "3", "--batch", "3", "--workers", "1",
            "--precision", "fp32", "--no-progress"],
            lambda out: render_of(out / "render.mp4"), merge_kill, merge_left, lambda out: out / "render.mp4"),
        "mask-train": Stage("mask-train", lambda out: [
            "mask", "train", "--faceset", str(fx["labelled"]), "--model", str(out / "seg"), "--resolution", "64",
            "--max-iters", str(size.mask_iters), "--batch-size", "2", "--workers", "0", "--threads", "2", "--no-bf16",
            "--save-every-min", "0.003", "--preview-every-min", "1000", "--no-progress"],
            lambda out: checkpoint_of(out / "seg"), lambda out, ref: model_kill(out / "seg", ref),
            lambda out: model_left(out / "seg")),
        "studio": Stage("studio", extract_argv, lambda out: faces_of(out / "faces"), studio_kill,
                        lambda out: temp_files(out)),
    }


# -- the drills ---------------------------------------------------------------------------------------------

class Drills:
    """Fixtures, references and the drill loop."""

    def __init__(self, root: Path, seed: int = 0, log: Callable[[str], None] = print, size: Size = Size()):
        self.root, self.rng, self.say, self.size = root, random.Random(seed), log, size
        self.launcher = Launcher()
        self.fx: dict[str, Path] = {}
        self.refs: dict[str, dict] = {}
        self.seconds: dict[str, float] = {}
        self.stages: dict[str, Stage] = {}
        self._runs = 0

    def _log(self) -> Path:
        self._runs += 1
        return self.root / "logs" / f"run{self._runs:04d}.log"

    def _must(self, argv: list[str], what: str) -> float:
        code, seconds, _ = self.launcher.run(argv, log := self._log())
        if code != 0:
            raise RuntimeError(f"{what} failed (exit {code}): {log.read_text()[-2000:]}")
        return seconds

    def prepare(self, stages: list[str]) -> None:
        """Footage, facesets, workspace, model and labels; each stage's uninterrupted reference run."""
        from facedouble import api

        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        fx = self.fx
        fx["clip"] = write_clip(self.root / "target.mp4", "lbbc2a", self.size.frames, audio=True)
        fx["src_faces"] = self.root / "src-faces"
        source = write_clip(self.root / "source.mp4", "bbaf2n", self.size.frames, audio=False)
        api.extract(source, fx["src_faces"], size=64, embed_every=4, progress=False)
        fx["workspace"] = workspace(self.root, fx["src_faces"])
        fx["labelled"] = label_faceset(fx["src_faces"], self.root / "labelled")
        self.stages = make_stages(fx, self.size)
        # the extract reference is also the dst/target faceset, the train reference the merge model
        order = ["extract", "train", "merge", "mask-train"]
        needed = set(stages) | ({"extract"} if {"train", "merge", "studio"} & set(stages) else set()) | \
            ({"train"} if "merge" in stages else set())
        for name in [n for n in order if n in needed]:
            # twice: the stage must be deterministic for a drill to compare with it, and the second run's
            # time (warm caches) is what a drill's run takes
            again = self.root / "ref" / f"{name}-again"
            first_seconds = self._must(self.stages[name].argv(again), f"reference {name}") if self.size.twice \
                else float("inf")
            out = self.root / "ref" / name
            self.seconds[name] = min(first_seconds, self._must(self.stages[name].argv(out), f"reference {name}"))
            self.refs[name] = self.stages[name].result(out)
            if self.size.twice and (first := self.stages[name].result(again)) != self.refs[name]:
                diff = sorted(k for k in set(first) | set(self.refs[name]) if first.get(k) != self.refs[name].get(k))
                raise RuntimeError(f"two uninterrupted {name} runs differ (in {diff[:3]}): not deterministic")
            shutil.rmtree(again, ignore_errors=True)
            if name == "extract":
                fx["dst_faces"] = out / "faces"
            if name == "train":
                fx["model"] = out / "model"
        if "studio" in stages:
            self.refs["studio"] = self.refs["extract"]
            # a studio job starts a supervisor and a fresh `python -m facedouble` (imports): time one
            self.seconds["studio"] = self.seconds["extract"] + 3.0
            if self.size.twice:
                out = self.root / "ref" / "studio"
                t0 = time.monotonic()
                code, log = self._studio_rerun(out)
                self.seconds["studio"] = time.monotonic() - t0
                if code != 0 or self.stages["studio"].result(out) != self.refs["studio"]:
                    raise RuntimeError(f"the studio's extract job differs from the command's: {log.read_text()[-500:]}")
        self.say("references: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items()))

    def kill_points(self, n: int, seconds: float) -> list[float]:
        """N kill times, stratified over the first 90 % of `seconds` (a run's time varies on shared cores)."""
        return [0.9 * seconds * (i + self.rng.random()) / n for i in range(n)]

    def drill(self, name: str, points: int) -> Outcome:
        """N drills of stage `name`."""
        stage, ref = self.stages[name], self.refs[name]
        outcome = Outcome(name)
        times: list[float | None] = self.kill_points(points, self.seconds[name])
        if stage.watch is not None and points > 1:
            times[-1] = None  # the last drill kills when the watched file appears
        reference, pace = self.seconds[name], 1.0  # pace: a run's time now / the reference's
        for i, planned in enumerate(times):
            at = None if planned is None else planned * pace
            out = self.root / "drills" / name / f"{i:03d}"
            out.mkdir(parents=True)
            outcome.drills += 1
            if at is None:
                hit, problems = self._watch_kill(stage, out), []
            else:
                for attempt in range(2):
                    t0 = time.monotonic()
                    if name == "studio":
                        hit, problems = self._studio_kill(out, at)
                    else:
                        _, _, hit = self.launcher.run(stage.argv(out), self._log(), kill_after=at)
                        problems = []
                    if hit or attempt or problems:
                        break
                    # the run ended before the kill (the shared machine got faster): once more, from scratch,
                    # at the same place in the run as fast as this one went
                    pace = (time.monotonic() - t0) / reference
                    at = planned * pace
                    shutil.rmtree(out)
                    out.mkdir(parents=True)
            outcome.hit += hit
            lost = stage.after_kill(out, ref)
            problems += lost
            if name == "studio":
                code, rerun_log = self._studio_rerun(out)
            else:
                code, _, _ = self.launcher.run(stage.argv(out), rerun_log := self._log())
            if code != 0:
                problems.append(f"re-run exit {code}: {rerun_log.read_text()[-300:].strip()}")
                lost += ["re-run failed"]
            else:
                try:
                    got = stage.result(out)
                except Exception as exc:  # noqa: BLE001
                    got = {"error": str(exc)}
                diff = [k for k in set(got) | set(ref) if got.get(k) != ref.get(k)]
                if diff:
                    problems.append(f"re-run differs from the reference in {len(diff)} item(s), "
                                    f"e.g. {sorted(diff)[:3]}")
                    lost += diff
            left = stage.leftovers(out)
            if left:
                problems.append(f"left behind: {left[:3]}")
            outcome.lost += len(lost)
            outcome.partial += len(left)
            ok = not problems
            outcome.survived += ok
            when = f"when {stage.watch(out).name} appears" if at is None else f"at {at:.2f} s"
            tag = f"{name} drill {i + 1}/{points}: kill {when}{'' if hit else ' (after the end)'}"
            self.say(f"{tag}: {'ok' if ok else 'FAILED: ' + '; '.join(problems)}")
            outcome.problems += [f"{tag}: {p}" for p in problems]
            if ok:
                shutil.rmtree(out, ignore_errors=True)  # keep failed drills' folders to look at
        return outcome

    def _watch_kill(self, stage: Stage, out: Path) -> bool:
        """Run the stage and SIGKILL it the moment its watched file appears; True if it was still running."""
        pid = self.launcher.start(stage.argv(out), self._log())
        watched = stage.watch(out)
        code = None
        while code is None and not watched.exists():
            code = self.launcher.wait(0.002)
        if code is not None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        self.launcher.wait()
        return True

    def _studio_kill(self, out: Path, at: float) -> tuple[bool, list[str]]:
        from facedouble.studio.jobs import JobRunner

        runner = JobRunner(self.fx["workspace"])
        record = runner.start("extract", self.stages["studio"].argv(out))
        self._job = record["id"]
        deadline = time.monotonic() + at
        while time.monotonic() < deadline:
            if runner.get(record["id"])["state"] in ("done", "failed"):
                break
            time.sleep(0.02)
        state = runner.get(record["id"])["state"]
        if state in ("done", "failed"):
            return False, [] if state == "done" else [f"job {state} before the kill"]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record["supervisor_pid"], signal.SIGKILL)  # the supervisor and its command: a crash
        time.sleep(0.1)
        state = runner.get(record["id"])["state"]
        return True, [] if state in ("lost", "failed", "done") else [f"killed job shows as {state!r}, not lost"]

    def _studio_rerun(self, out: Path) -> tuple[int | None, Path]:
        from facedouble.studio.jobs import JobRunner

        runner = JobRunner(self.fx["workspace"])
        record = runner.start("extract", self.stages["studio"].argv(out))
        final = runner.wait(record["id"], 300)
        log = runner.dir / f"{record['id']}.log"
        return (0 if final["state"] == "done" else final.get("returncode", -1)), log


def table(outcomes: list[Outcome]) -> str:
    """The drills table (Markdown)."""
    rows = ["| stage | drills run | killed mid-run | survived | files lost or corrupted | partial files left |",
            "|---|---:|---:|---:|---:|---:|"]
    for o in outcomes:
        rows.append(f"| {o.stage} | {o.drills} | {o.hit} | {o.survived} | {o.lost} | {o.partial} |")
    return "\n".join(rows)


def run_drills(root: Path, stages: list[str], points: int | dict[str, int], seed: int = 0,
               log: Callable[[str], None] = print, size: Size = Size()) -> list[Outcome]:
    """Prepare under `root` and drill each stage; `points` per stage (an int, or a dict by stage)."""
    drills = Drills(root, seed, log, size)
    try:
        drills.prepare(stages)
        counts = points if isinstance(points, dict) else dict.fromkeys(stages, points)
        return [drills.drill(name, counts[name]) for name in stages]
    finally:
        drills.launcher.close()


def main(argv: list[str] | None = None) -> int:
    """Run the drills and print the table; exit status 1 when a drill failed."""
    parser = argparse.ArgumentParser(prog="python -m bench.drills", description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=20, help="kills per stage (default 20)")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated: " + ", ".join(STAGES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="work folder (default: a temporary one, removed after)")
    args = parser.parse_args(argv)
    stages = [s for s in args.stages.split(",") if s]
    if unknown := [s for s in stages if s not in STAGES]:
        parser.error(f"unknown stage(s) {', '.join(unknown)}")
    root = args.work or Path(tempfile.mkdtemp(prefix="facedouble-drills-"))
    t0 = time.monotonic()
    try:
        outcomes = run_drills(root, stages, args.points, args.seed)
    finally:
        if args.work is None and not any(root.glob("drills/*/*")):
            shutil.rmtree(root, ignore_errors=True)
    print(f"\nkill drills ({args.points} points a stage, seed {args.seed}, {time.monotonic() - t0:.0f} s; {CPU})")
    print(table(outcomes))
    failed = [p for o in outcomes for p in o.problems]
    for problem in failed:
        print("failed:", problem)
    if failed:
        print(f"failed drills' folders are kept under {root}/drills")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
