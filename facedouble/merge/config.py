"""Merge settings (`MergeConfig`, validated, TOML-loadable) and where results go (`Outputs`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

from facedouble.errors import FacedoubleError
from facedouble.io.framerange import frame_window, parse_frames
from facedouble.merge.overrides import FaceSettings

DEVICES = ("cpu", "cuda", "auto")


def resolve_device(device: str) -> str:
    """The torch device merge runs the model on: cpu; cuda (FacedoubleError when none is usable); auto = cuda
    when PyTorch sees one, else cpu."""
    if device not in DEVICES:
        raise FacedoubleError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "cpu":
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if device == "cuda":
        raise FacedoubleError("--device cuda: PyTorch sees no CUDA device here; use --device cpu or auto")
    return "cpu"


@dataclasses.dataclass
class MergeConfig(FaceSettings):
    """Merge settings (TOML-loadable): the per-frame face settings plus run-wide ones."""

    # Keys renamed by issue 18 (one vocabulary): a TOML file with the old key gets a one-line hint.
    RENAMED_KEYS: ClassVar[dict[str, str]] = {"preset": "x264_preset", "smooth": "transform_smooth",
                                              "conv_algo": "conv"}
    X264_PRESETS: ClassVar[tuple[str, ...]] = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium",
                                               "slow", "slower", "veryslow", "placebo")

    transform_smooth: float = 1.0  # temporal smoothing sigma of the face transforms, in frames (0 = off)
    batch: int = 16  # frames per model batch (the swapper runs 16 faces at a time; 16 beat 8 at 720p)
    workers: int = 2  # compositing threads
    segment_frames: int = 50  # frames per resumable/shardable video segment
    crf: int = 18  # x264 quality (lower = better)
    x264_preset: str = "veryfast"  # x264 speed preset
    precision: str = "auto"  # model arithmetic: auto | fp32 | bf16 (facedouble.nn.precision)
    conv: str = "auto"  # how the model's convs run: auto | direct | winograd (facedouble.nn.precision)
    codec: str = "h264"  # video codec of a video OUT (facedouble.merge.writers.VIDEO_CODECS)
    frames: str = ""  # "A-B": render source frames A..B (inclusive, 0-based) only; "" = the whole clip
    handles: int = 0  # extra frames rendered before A and after B (clipped to the clip)
    device: str = "cpu"  # where the model runs: cpu | cuda | auto (cuda when available)

    def face_settings(self) -> FaceSettings:
        """The per-frame part."""
        return FaceSettings(**{f.name: getattr(self, f.name) for f in dataclasses.fields(FaceSettings)})

    def validate(self) -> MergeConfig:
        """One-line FacedoubleError for impossible values."""
        self.face_settings().validate()
        if not 0 <= self.transform_smooth <= 10:
            raise FacedoubleError(f"transform_smooth must be 0..10 frames, got {self.transform_smooth}")
        from facedouble.nn.precision import CONV_ALGOS, PRECISIONS

        for name, allowed in (("x264_preset", self.X264_PRESETS), ("precision", PRECISIONS), ("conv", CONV_ALGOS)):
            if getattr(self, name) not in allowed:
                raise FacedoubleError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        for name, lo, hi in (("batch", 1, 256), ("workers", 1, 64), ("segment_frames", 1, 100000),
                             ("crf", 0, 51), ("handles", 0, 100000)):
            if not lo <= getattr(self, name) <= hi:
                raise FacedoubleError(f"{name} must be {lo}..{hi}, got {getattr(self, name)}")
        from facedouble.merge.writers import video_codec

        video_codec(self.codec)
        if self.device not in DEVICES:
            raise FacedoubleError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        self.frame_range()
        return self

    def frame_range(self) -> tuple[int, int] | None:
        """(A, B) of `frames` = "A-B" (inclusive source frame numbers: a video's count from 0, an image
        sequence's are its own, e.g. 1001), None for the whole clip."""
        return parse_frames(self.frames)

    def window(self, frame_count: int | None, first_number: int = 0) -> tuple[int, int | None]:
        """[first, last] frame indices (0-based decode order) to render: the range grown by the handles,
        clipped to the clip (last None = to the clip's end). `first_number` is the source's first frame number
        (an image sequence's, e.g. 1001), so `frames` names the source's own numbers."""
        return frame_window(self.frames, self.handles, frame_count, first_number)


@dataclasses.dataclass
class Outputs:
    """Where results go. At least one of `video` and `png_dir`."""

    video: Path | None = None  # .mp4 / .mov / .mkv
    png_dir: Path | None = None
    matte_dir: Path | None = None
    transforms: Path | None = None  # per-frame transforms JSON
    patch_dir: Path | None = None  # RGBA face patches + patches.json (placement matrices) for compositing
    sequence: Path | None = None  # numbered image sequence, e.g. out/shot.%04d.exr (facedouble.merge.seqwriters)

    def work_dir(self) -> Path:
        """Folder holding segments and per-segment records (kept for resume, shards and concat)."""
        if self.video is not None:
            return self.video.parent / (self.video.name + ".parts")
        if self.png_dir is not None:
            return self.png_dir / ".merge-parts"
        if self.sequence is not None:  # one work folder per sequence, beside its frames
            return self.sequence.parent / f".{self.sequence.name.split('%')[0].split('#')[0]}merge-parts"
        raise FacedoubleError("no output given (a video file and/or a PNG folder)")
