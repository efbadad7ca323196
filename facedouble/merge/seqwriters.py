"""Image-sequence writers for finishing: EXR (half or float, the matte as alpha or a layer), 16-bit PNG,
16-bit or float TIFF and 10-bit DPX, numbered like the source (`shot.%04d.exr` from 1001 for a sequence
that starts there).

Pixels merge did not change are the source's values as read, bit for bit: each frame is the plate at full
precision (re-read from the source sequence by `facedouble.io.sequence`) with only the pixels that differ
between the rendered 8-bit working-space frame and the 8-bit view of the plate replaced. Those are
converted back to the plate's colour space (OCIO, the inverse of the reader's conversion), and where the
matte is soft the plate's own detail is kept in proportion to what the blend kept of it:

    out = to_plate(rendered) + (1 - alpha) * (plate - to_plate(plate_8bit))

so a fully replaced pixel is the swapped face in the plate's encoding, a pixel only the watermark touched
is the plate plus the mark, and super-whites outside the face square survive. A video source has no float
plate: its 8-bit frames are the plate (sRGB-encoded, no conversion).

The writers are registered by output suffix in `SEQUENCE_WRITERS` (merge's `--out shot.%04d.exr`).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np

from facedouble.errors import FacedoubleError, InternalError
from facedouble.io.atomic import storage_error
from facedouble.io.ocio import ColourConverter
from facedouble.io.sequence import Plate, format_frame_path

SYNTHETIC_NOTE = "synthetic media: face replaced with facedouble"
MATTE_LAYER = "matte.A"  # the matte's channel when the plate has an alpha of its own (kept as it was)


def compose(plate: np.ndarray, rendered: np.ndarray, target: np.ndarray, alpha: np.ndarray,
            converter: ColourConverter, in_place: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(full-precision frame, mask of changed pixels): the plate with merge's changes put back in its space.

    `rendered`/`target` are the 8-bit working-space frames after and before merge, `alpha` the blend matte
    (H, W) in [0, 1]. Unchanged pixels are copied from `plate` (bit-identical); `in_place` (a float32 plate
    the caller owns) writes the changes into it instead of a copy (a 4K frame is 100 MB).
    """
    changed = np.any(rendered != target, axis=-1)
    out = plate if in_place and plate.dtype == np.float32 else np.array(plate, dtype=np.float32, copy=True)
    if not changed.any():
        return out, changed
    ys, xs = np.nonzero(changed)
    face = converter.to_plate(rendered[ys, xs].astype(np.float32) / 255.0)
    base = converter.to_plate(target[ys, xs].astype(np.float32) / 255.0)
    keep = (1.0 - np.clip(alpha[ys, xs], 0.0, 1.0))[:, None]
    out[ys, xs] = face + keep * (out[ys, xs] - base)
    return out, changed


def _write_oiio(path: Path, pixels: np.ndarray, channels: list[str], pixel_type: str,
                attributes: dict[str, tuple[str, object]], extra: dict[str, object]) -> None:
    """Write `pixels` (H, W, C) with OpenImageIO to a temp file beside `path`, then rename it into place."""
    import OpenImageIO as oiio  # noqa: N813 - its usual short name

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], pixels.shape[2], pixel_type)
        spec.channelnames = tuple(channels)
        for name, (kind, value) in attributes.items():
            with contextlib.suppress(Exception):  # a header attribute this format cannot hold is dropped
                spec.attribute(name, oiio.TypeDesc(kind), value)
        for name, value in extra.items():
            spec.attribute(name, value)
        out = oiio.ImageOutput.create(tmp)
        if out is None or not out.open(tmp, spec):
            raise InternalError(f"cannot write {path}: {' '.join(oiio.geterror().split())}")
        ok = out.write_image(np.ascontiguousarray(pixels))
        error = out.geterror()
        out.close()
        if not ok:
            raise InternalError(f"cannot write {path}: {' '.join(error.split())}")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise storage_error(path, exc) or exc from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_exr(path: Path, rgb: np.ndarray, matte: np.ndarray, plate: Plate) -> None:
    """EXR: half (float when the plate is float), RGB + the matte as A, or as `matte.A` beside the plate's own
    A; zip-compressed (lossless); the plate's rate, timecode and colour tags carried over."""
    pixel_type = "float" if plate.pixel_type == "float" else "half"
    names = ["R", "G", "B", "A", MATTE_LAYER] if plate.alpha is not None else ["R", "G", "B", "A"]
    pixels = np.empty((*rgb.shape[:2], len(names)), np.float32)
    pixels[..., :3] = rgb
    if plate.alpha is not None:
        pixels[..., 3] = plate.alpha
    pixels[..., -1] = matte
    _write_oiio(path, pixels, names, pixel_type, plate.attributes,
                {"compression": "zip", "ImageDescription": SYNTHETIC_NOTE, "Software": "facedouble"})


def _integer(rgb: np.ndarray, bits: int) -> np.ndarray:
    top = float((1 << bits) - 1)
    return (np.clip(np.rint(np.nan_to_num(rgb, nan=0.0) * top), 0, top) / top).astype(np.float32)


def write_png16(path: Path, rgb: np.ndarray, matte: np.ndarray, plate: Plate) -> None:
    """16-bit PNG, RGB (the matte goes to --matte-dir: an alpha here would make viewers show the plate
    see-through)."""
    _write_oiio(path, _integer(rgb, 16), ["R", "G", "B"], "uint16", {}, {"ImageDescription": SYNTHETIC_NOTE})


def write_tiff(path: Path, rgb: np.ndarray, matte: np.ndarray, plate: Plate) -> None:
    """TIFF: 32-bit float when the plate is float, else 16-bit; RGB, zip-compressed (lossless)."""
    if plate.pixel_type in ("half", "float"):
        pixels, kind = rgb.astype(np.float32), "float"
    else:
        pixels, kind = _integer(rgb, 16), "uint16"
    _write_oiio(path, pixels, ["R", "G", "B"], kind, {}, {"compression": "zip", "ImageDescription": SYNTHETIC_NOTE})


def write_dpx(path: Path, rgb: np.ndarray, matte: np.ndarray, plate: Plate) -> None:
    """DPX: the plate's depth when it is a 10/12/16-bit DPX, else 10-bit (filled, method A); RGB."""
    bits = plate.bits if plate.bits in (10, 12, 16) else 10
    dpx_attrs = {k: v for k, v in plate.attributes.items() if k.startswith("dpx:")}
    _write_oiio(path, _integer(rgb, bits), ["R", "G", "B"], "uint16", dpx_attrs,
                {"oiio:BitsPerSample": bits, "ImageDescription": SYNTHETIC_NOTE})


def _bcd(value: int) -> int:
    return (value // 10) << 4 | value % 10


def timecode_at(start: str | None, index: int, fps: float | None) -> tuple[int, int] | None:
    """SMPTE 12M timecode (packed BCD time with the drop-frame flag, user bits) of frame `index` after `start`
    ("HH:MM:SS:FF", or "HH:MM:SS;FF" drop-frame at 29.97/59.94); None without a usable timecode."""
    from facedouble.merge.writers import timecode_add

    if not start or not fps:
        return None
    label = timecode_add(start, index, Fraction(fps).limit_denominator(1001)) if index else start.strip()
    match = re.fullmatch(r"(\d{1,2}):(\d\d):(\d\d)([:;.,])(\d\d)", label)
    if match is None:
        return None
    h, m, s, sep, f = match.groups()
    drop = 0x40 if sep in ";," else 0
    return _bcd(int(h)) << 24 | _bcd(int(m)) << 16 | _bcd(int(s)) << 8 | drop | _bcd(int(f)), 0


FrameWriter = Callable[[Path, np.ndarray, np.ndarray, Plate], None]
SEQUENCE_WRITERS: dict[str, FrameWriter] = {
    ".exr": write_exr, ".png": write_png16, ".tif": write_tiff, ".tiff": write_tiff, ".dpx": write_dpx,
}


class SequenceOutput:
    """Writes merge's rendered frames as a numbered sequence `pattern` (e.g. `out/shot.%04d.exr`).

    `source` is the target's FrameSource: its image sequence (if it is one) gives the float plates, the
    frame numbers and the colour conversion; a video source gives its 8-bit frames and 0-based numbers.
    """

    def __init__(self, pattern: Path, source) -> None:  # noqa: ANN001 - facedouble.io.video.FrameSource
        self.pattern = Path(pattern)
        suffix = self.pattern.suffix.lower()
        if suffix not in SEQUENCE_WRITERS:
            raise FacedoubleError(f"no sequence writer for {suffix!r} (have: {', '.join(SEQUENCE_WRITERS)})")
        self.write_frame = SEQUENCE_WRITERS[suffix]
        self.sequence = getattr(source, "sequence", None)
        self.converter = self.sequence.converter if self.sequence is not None else ColourConverter("srgb_texture")
        # a video source's start timecode and rate go into every frame's header (a sequence's own headers
        # already carry theirs)
        info = getattr(source, "info", None)
        self.timecode = getattr(info, "timecode", None) if self.sequence is None else None
        self.fps = getattr(info, "fps", None) if self.sequence is None else None

    def check_work(self, work: Path) -> None:
        """Record the colour conversion in merge's work folder, or refuse one made with another (a resumed run
        with another --colourspace/--ocio would mix two encodings in one sequence)."""
        import json

        from facedouble.io.atomic import atomic_write_json

        state = {"pattern": self.pattern.name} | self.converter.describe()
        path = Path(work) / "sequence.json"
        if path.exists():
            old = json.loads(path.read_text(encoding="utf-8"))
            if old != state:
                changed = ", ".join(f"{k} {old.get(k)!r} -> {v!r}" for k, v in state.items() if old.get(k) != v)
                raise FacedoubleError(f"{work} holds frames rendered with other colour settings ({changed}); "
                                      "re-run with --fresh to start over")
        else:
            atomic_write_json(path, state)

    def path_for(self, index: int) -> Path:
        """Output path of decode index `index`: the source's frame number (its index for a video)."""
        number = self.sequence.number(index) if self.sequence is not None else index
        return format_frame_path(self.pattern, number)

    def write(self, index: int, rendered: np.ndarray, target: np.ndarray, alpha: np.ndarray,
              matte: np.ndarray | None = None, plate: Plate | None = None) -> Path:
        """Write frame `index`; returns its path. `rendered`/`target`: 8-bit working-space RGB after/before
        merge; `alpha`: the blend matte; `matte`: what goes in the file's matte channel (default `alpha`; merge
        passes the matte covering everything it changed, watermark included); `plate`: the source file's pixels
        as the reader read them (`Frame.plate`; read again here when not given). The plate's RGB is written
        over in place."""
        if self.sequence is not None:
            plate = plate if plate is not None else self.sequence.read_plate(index)
        else:
            attributes: dict[str, tuple[str, object]] = {}  # a video source: its 8-bit frame is the plate
            if self.fps:
                rate = Fraction(self.fps).limit_denominator(1001)
                attributes["framesPerSecond"] = ("rational", (rate.numerator, rate.denominator))
            if (code := timecode_at(self.timecode, index, self.fps)) is not None:
                attributes["smpte:TimeCode"] = ("timecode", code)
            plate = Plate(target.astype(np.float32) / 255.0, None, "uint8", 8, attributes)
        rgb, _ = compose(plate.rgb, rendered, target, alpha, self.converter, in_place=True)
        path = self.path_for(index)
        self.write_frame(path, rgb, np.asarray(alpha if matte is None else matte, np.float32), plate)
        return path

    def frames(self, count: int) -> list[Path]:
        """The paths of the first `count` frames, in order."""
        return [self.path_for(i) for i in range(count)]
