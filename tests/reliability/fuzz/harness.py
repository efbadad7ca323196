"""One harness per reader: feed it bytes; it must end in success or the documented one-line error.

Each target is `fn(data: bytes, scratch: Path) -> None`. `ALLOWED[name]` is the exception type the
reader documents (facedouble.errors); anything else a target raises is a finding. `scratch` is an empty
per-worker folder for readers that take a path.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from pathlib import Path

from facedouble.errors import FacedoubleError, InputError

CORPUS = Path(__file__).resolve().parents[1] / "corpus"


def _clean(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            path.unlink()


def imagemeta_target(data: bytes, scratch: Path) -> None:
    """The PNG iTXt / JPEG APP11 metadata codec: read, remove and rewrite a key."""
    from facedouble.io import imagemeta

    for key in ("facedouble.face", "k"):
        text = imagemeta.get_text(data, key)
        assert text is None or isinstance(text, str)
        stripped = imagemeta.remove_text(data, key)
        assert imagemeta.get_text(stripped, key) is None
    again = imagemeta.set_text(data, "k", "v✓")
    assert imagemeta.get_text(again, "k") == "v✓"  # a write always reads back


def faceset_target(data: bytes, scratch: Path) -> None:
    """The faceset reader: a face image's embedded metadata, and the metadata JSON on its own."""
    from facedouble.faceset.meta import FaceMeta, read_face

    path = scratch / "face.png"
    path.write_bytes(data)
    try:
        read_face(path)
    except InputError:
        pass
    finally:
        path.unlink()
    meta = FaceMeta.from_json(data.decode("utf-8", "replace"))
    FaceMeta.from_json(meta.to_json())  # what was accepted writes and reads back


def overrides_target(data: bytes, scratch: Path) -> None:
    """The merge override sidecar, as TOML and as JSON, then resolved over frames."""
    from facedouble.merge.overrides import FaceSettings, Overrides, load_overrides

    for suffix in (".toml", ".json"):
        path = scratch / f"fix{suffix}"
        path.write_bytes(data)
        try:
            rules = load_overrides(path)
            overrides = Overrides(FaceSettings(), rules)
            for index in (0, 1, 120, 10**6):
                overrides.for_frame(index)
        except FacedoubleError:
            if suffix == ".json":
                raise
        finally:
            path.unlink()


def config_target(data: bytes, scratch: Path) -> None:
    """The TOML config loader on the stages' config dataclasses, then their own validation."""
    from facedouble.config import load_toml
    from facedouble.extract.pipeline import ExtractConfig
    from facedouble.merge.pipeline import MergeConfig

    path = scratch / "config.toml"
    path.write_bytes(data)
    try:
        for cls in (ExtractConfig, MergeConfig):
            try:
                cfg = load_toml(cls, path)
                cfg.validate()
                dataclasses.asdict(cfg)
            except FacedoubleError:
                pass
    finally:
        path.unlink()


def consent_target(data: bytes, scratch: Path) -> None:
    """Consent records, withdrawals and faceset bindings read from a workspace."""
    from facedouble.consent import records as consent

    ws = scratch / "ws"
    faceset = scratch / "faceset"
    for folder in (ws / "identities", ws / "revocations", faceset):
        folder.mkdir(parents=True, exist_ok=True)
    try:
        (ws / "identities" / "jane.json").write_bytes(data)
        try:
            record = consent.load_identity(ws, "jane")
            consent.check_model_consent({"name": "jane", "record_hash": record.record_hash}, ws)
        except FacedoubleError:
            pass
        (ws / "identities" / "jane.json").write_text('{"name": "jane", "release_sha256": "00", '
                                                     '"release_path": "/nonexistent"}')
        (ws / "revocations" / "jane.json").write_bytes(data)
        with contextlib.suppress(FacedoubleError):
            record = consent.load_identity(ws, "jane")
            consent.check_model_consent({"name": "jane", "record_hash": record.record_hash}, ws)
        (ws / "revocations" / "jane.json").unlink()
        (faceset / consent.BINDING_FILE).write_bytes(data)
        consent.require_consent(faceset, ws)
    finally:
        _clean(scratch)


VIDEO_SUFFIXES = {"mp4": ".mp4", "mkv": ".mkv", "mpg": ".mpg", "png": ".png", "jpg": ".jpg", "exr": ".exr"}


def video_target(data: bytes, scratch: Path, suffix: str = ".mp4", max_frames: int = 8) -> None:
    """The frame reader: probe a file, decode its first frames, seek into it; also as a one-image folder."""
    from facedouble.io.video import open_source

    try:
        if suffix in (".png", ".jpg"):  # a one-image folder goes through the image path of the reader
            folder = scratch / "stills"
            folder.mkdir()
            (folder / f"0001{suffix}").write_bytes(data)
            with contextlib.suppress(InputError):
                for frame in open_source(folder):
                    assert frame.image.ndim == 3
        path = scratch / f"clip{suffix}"
        path.write_bytes(data)
        src = open_source(path)
        for frame in src.frames():
            if frame.index >= max_frames:
                break
        for frame in src.frames(3):
            if frame.index >= 5:
                break
    finally:
        _clean(scratch)
        for folder in scratch.glob("*"):
            folder.rmdir()


def _video(suffix: str) -> Callable[[bytes, Path], None]:
    def target(data: bytes, scratch: Path) -> None:
        video_target(data, scratch, suffix)

    target.__doc__ = f"The frame reader on a mutated {suffix} file."
    return target


TARGETS: dict[str, Callable[[bytes, Path], None]] = {
    "imagemeta": imagemeta_target,
    "faceset": faceset_target,
    "overrides": overrides_target,
    "config": config_target,
    "consent": consent_target,
    **{f"video-{name}": _video(suffix) for name, suffix in VIDEO_SUFFIXES.items()},
}
ALLOWED: dict[str, type[BaseException]] = {name: InputError for name in TARGETS}
ALLOWED.update({"overrides": FacedoubleError, "config": FacedoubleError, "consent": FacedoubleError})
# Per-input time limits (seconds): a reader that takes longer is reported as a hang.
TIME_LIMIT = {name: (10.0 if name.startswith("video") else 3.0) for name in TARGETS}

# Tokens the mutator splices into text formats (TOML/JSON), so mutations reach past the tokenizer.
TOKENS: dict[str, list[bytes]] = {
    "overrides": [b"[[override]]", b"frames", b"colour", b"erode", b"blur", b"mask", b"blend", b"scale",
                  b"sharpen", b'"1-"', b'"-5"', b'"10-2"', b"1e999", b"nan", b"inf", b"-0", b"{", b"}", b"[",
                  b"]", b"=", b'"', b"\n", b"true", b'"mkl"', b'"poisson"', b'{"override": [', b"null"],
    "config": [b"size", b"face_type", b"=", b'"', b"\n", b"[x]", b"1e999", b"nan", b"true", b"-1", b"999999999999",
               b"segment_frames", b"batch", b"colour", b"workers", b"detect_every", b"[1, 2]", b"{a = 1}"],
    "consent": [b'"name"', b'"expires"', b'"created"', b'"version"', b'"release_sha256"', b'"release_path"',
                b'"identity"', b'"record_hash"', b'"revoked"', b"null", b"[]", b"{}", b"1e999", b'"2027-13-45"',
                b'"2027-12-31"', b"true", b":", b",", b'"../x"', b"123"],
    "faceset": [b'"version"', b"2", b"1", b'"labels"', b'"mesh"', b'"embedding"', b"[[", b"]]", b"null",
                b"1e999", b"NaN", b"-1", b"4097", b'"frame_size"', b"[0, 0]", b"true"],
}


def seeds(name: str) -> list[bytes]:
    """The committed seed inputs of target `name` (corpus/<family>/*)."""
    family = name.split("-", 1)[1] if name.startswith("video-") else name
    folder = CORPUS / family
    return [p.read_bytes() for p in sorted(folder.glob("*")) if p.is_file()] or [b""]
