"""Image sequences at full precision: EXR (half/float, any channel names, data windows), DPX 8/10/12/16-bit,
TIFF 8/16/32f and PNG 8/16, read through OpenImageIO.

A sequence is a folder of numbered frames, one name pattern (`shot.1001.exr`, `shot.1002.exr`, ...). Its
frame numbers are kept (output frames are named after them), a gap is an error naming the missing frame,
and its rate comes from `--fps`, else the files' metadata (EXR framesPerSecond, DPX frame rate), else 25.

Every frame is served twice: as the float32 plate (`read_plate`, the source's values untouched, what the
sequence writers composite onto) and as the 8-bit frame every 8-bit stage sees (`Frame.image`: the plate
converted to the working space by OCIO, `facedouble.io.ocio`). The plate's colour space is `--colourspace`,
else the file's tag as OpenImageIO reads it (an untagged EXR is linear Rec.709, an untagged integer file
is sRGB-encoded, which is the working space itself: no conversion).

A folder of 8-bit PNG/TIFF/JPEG images keeps the plain image reader of `facedouble.io.video` (frames
numbered from 0, as before); EXR and DPX folders, and PNG/TIFF folders deeper than 8 bits, are sequences.

Options that the files cannot carry (`--fps`, `--colourspace`, `--ocio`) reach the reader through
`media_options(...)`, a context the extract and merge commands open around their run, so every stage that
opens the source (extract, merge's plan, render and writers) reads it the same way.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import re
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from facedouble.errors import InputError

SEQUENCE_SUFFIXES = (".exr", ".dpx", ".tif", ".tiff", ".png")
HIGH_SUFFIXES = (".exr", ".dpx")  # always read as sequences, whatever their depth
_NUMBERED = re.compile(r"^(?P<prefix>.*?)(?P<number>\d+)(?P<suffix>\.[A-Za-z0-9]+)$")
_RGB_NAMES = (("R", "G", "B"), ("r", "g", "b"), ("red", "green", "blue"))
DEFAULT_FPS = 25.0


@dataclasses.dataclass(frozen=True)
class MediaOptions:
    """What the command line says about the media that the files may not: rate and colour."""

    fps: float | None = None  # frames per second of an image sequence (None: metadata, else 25)
    colourspace: str | None = None  # the plate's OCIO colour space (None: the file's tag)
    ocio: str | None = None  # OCIO config (URI or file); None: facedouble.io.ocio.DEFAULT_CONFIG

    def describe(self) -> dict[str, object]:
        """The options as a plain dict (records, work-folder checks)."""
        return dataclasses.asdict(self)


_DEFAULT_OPTIONS = MediaOptions()  # frozen: safe to share as the default
_OPTIONS: contextvars.ContextVar[MediaOptions | None] = contextvars.ContextVar("facedouble_media_options",
                                                                                default=None)


@contextlib.contextmanager
def media_options(options: MediaOptions | None):
    """Read sources with `options` inside the block (None: the defaults)."""
    token = _OPTIONS.set(options or MediaOptions())
    try:
        yield
    finally:
        _OPTIONS.reset(token)


def current_media_options() -> MediaOptions:
    """The options of the enclosing `media_options` block (defaults outside one)."""
    return _OPTIONS.get() or _DEFAULT_OPTIONS


@dataclasses.dataclass
class Plate:
    """One frame at full precision: RGB float32 (H, W, 3) in the display window, plus what writers keep."""

    rgb: np.ndarray
    alpha: np.ndarray | None  # the file's own alpha (H, W) float32, if it has one
    pixel_type: str  # "half", "float", "uint16", "uint8", ... as stored
    bits: int  # bits per sample as stored (10 for a 10-bit DPX)
    attributes: dict[str, object]  # header metadata worth carrying to the output (timecode, rate, ...)


def _oiio():
    import OpenImageIO as oiio  # noqa: N813 - its usual short name

    return oiio


def _spec_of(path: Path):  # noqa: ANN202 - OpenImageIO.ImageSpec
    oiio = _oiio()
    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        raise InputError(f"cannot read image {path}: {' '.join(oiio.geterror().split()) or 'unknown format'}")
    try:
        return inp.spec()
    finally:
        inp.close()


def _bits(path: Path) -> int:
    spec = _spec_of(path)
    return int(spec.get_int_attribute("oiio:BitsPerSample", 0) or spec.format.size() * 8)


def check_dpx(path: Path) -> None:
    """InputError unless the DPX's first image element is a packing/encoding this reader supports.

    Read from the header itself (SMPTE 268M: element 0 at byte 780; bit size at 803, packing at 804,
    encoding at 806), so an unsupported file is refused by name before any decoder guesses at it.
    """
    with open(path, "rb") as handle:
        head = handle.read(810)
    if len(head) < 810 or head[:4] not in (b"SDPX", b"XPDS"):
        raise InputError(f"cannot read {path}: not a DPX file (bad magic number or short header)")
    order = ">" if head[:4] == b"SDPX" else "<"
    bits = head[803]
    packing, encoding = struct.unpack_from(order + "HH", head, 804)
    if bits not in (8, 10, 12, 16):
        raise InputError(f"unsupported DPX bit depth {bits} in {path} (8, 10, 12 or 16)")
    if encoding != 0:
        raise InputError(f"unsupported DPX encoding in {path}: run-length encoded (only uncompressed)")
    if bits in (10, 12) and packing not in (0, 1):
        raise InputError(f"unsupported DPX packing {packing} in {path} ({bits}-bit: 0 = packed or "
                         "1 = filled method A)")


def rgb_channels(names: list[str] | tuple[str, ...]) -> tuple[list[int], int | None] | None:
    """(indices of R, G, B, index of the matching A or None) among `names`; None without RGB.

    The unnamed layer first, then layers in name order (`beauty.R`, `rgba.R`, ...), each as R/G/B,
    r/g/b or red/green/blue.
    """
    names = list(names)
    layers = [""] + sorted({n.rsplit(".", 1)[0] for n in names if "." in n})
    for layer in layers:
        pre = f"{layer}." if layer else ""
        for trio in _RGB_NAMES:
            found = [names.index(pre + c) for c in trio if pre + c in names]
            if len(found) == 3:
                alpha = next((names.index(pre + a) for a in ("A", "a", "alpha") if pre + a in names), None)
                return found, alpha
    return None


def read_plate(path: Path, size: tuple[int, int] | None = None) -> Plate:
    """Frame `path` at full precision; InputError (one line, naming the file) for anything unreadable.

    `size` (width, height) checks the display window against the sequence's.
    """
    oiio = _oiio()
    from facedouble.io.video import MAX_PIXELS

    if path.suffix.lower() == ".dpx":
        check_dpx(path)
    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        raise InputError(f"cannot read image {path}: {' '.join(oiio.geterror().split()) or 'unknown format'}")
    try:
        spec = inp.spec()
        full_w, full_h = spec.full_width or spec.width, spec.full_height or spec.height
        if full_w * full_h > MAX_PIXELS or spec.width * spec.height > MAX_PIXELS:
            raise InputError(f"cannot read {path}: {full_w}x{full_h} frames are over the "
                             f"{MAX_PIXELS // 1_000_000} MP limit")
        if size is not None and (full_w, full_h) != tuple(size):
            raise InputError(f"frame {path} is {full_w}x{full_h}, the sequence is {size[0]}x{size[1]}")
        picked = rgb_channels(spec.channelnames)
        if picked is None:
            raise InputError(f"{path} has no RGB channels (channels: {', '.join(spec.channelnames) or 'none'})")
        try:
            data = inp.read_image(0, 0, 0, spec.nchannels, "float")
        except Exception as exc:  # noqa: BLE001 - the bindings' own errors on a malformed file: one line
            raise InputError(f"cannot read {path}: {' '.join(str(exc).split()) or type(exc).__name__}") from None
        if data is None:
            raise InputError(f"cannot read {path}: {' '.join(inp.geterror().split()) or 'decoding failed'}")
    finally:
        inp.close()
    data = np.asarray(data, np.float32).reshape(spec.height, spec.width, spec.nchannels)
    rgb_idx, alpha_idx = picked
    rgb = _display_window(data[..., rgb_idx], spec, full_w, full_h)
    alpha = _display_window(data[..., alpha_idx], spec, full_w, full_h) if alpha_idx is not None else None
    bits = int(spec.get_int_attribute("oiio:BitsPerSample", 0) or spec.format.size() * 8)
    keep = {}
    for attr in spec.extra_attribs:
        if attr.name.startswith(("smpte:", "framesPerSecond", "dpx:FrameRate", "dpx:TimeCode", "oiio:ColorSpace",
                                 "chromaticities", "capDate", "owner", "dpx:Transfer", "dpx:Colorimetric")):
            keep[attr.name] = (str(attr.type), attr.value)
    return Plate(rgb, alpha, str(spec.format), bits, keep)


def _display_window(data: np.ndarray, spec, full_w: int, full_h: int) -> np.ndarray:  # noqa: ANN001
    """The data window's pixels placed in the display window (zero where the file stores none)."""
    x0, y0 = spec.x - spec.full_x, spec.y - spec.full_y
    if (x0, y0, spec.width, spec.height) == (0, 0, full_w, full_h):
        return np.ascontiguousarray(data)
    out = np.zeros((full_h, full_w, *data.shape[2:]), np.float32)
    sx0, sy0 = max(0, -x0), max(0, -y0)
    dx0, dy0 = max(0, x0), max(0, y0)
    w = min(spec.width - sx0, full_w - dx0)
    h = min(spec.height - sy0, full_h - dy0)
    if w > 0 and h > 0:
        out[dy0:dy0 + h, dx0:dx0 + w] = data[sy0:sy0 + h, sx0:sx0 + w]
    return out


def _fps_from(spec) -> float | None:  # noqa: ANN001 - OpenImageIO.ImageSpec
    for name in ("framesPerSecond", "dpx:FrameRate", "FramesPerSecond"):
        value = spec.getattribute(name)
        if value is None:
            continue
        if isinstance(value, tuple) and len(value) == 2 and value[1]:
            value = value[0] / value[1]
        try:
            fps = float(value)
        except (TypeError, ValueError):
            continue
        if 0 < fps < 1000:
            return fps
    return None


class ImageSequence:
    """A folder of numbered frames read at full precision (see the module doc)."""

    def __init__(self, folder: Path, files: list[Path], options: MediaOptions | None = None):
        from facedouble.io.ocio import DEFAULT_CONFIG, ColourConverter
        from facedouble.io.video import SourceInfo

        self.folder = Path(folder)
        self.options = options or current_media_options()
        groups: dict[tuple[str, str], list[tuple[int, Path, int]]] = {}
        for path in files:
            m = _NUMBERED.match(path.name)
            if m is None:
                raise InputError(f"{path} is not a numbered frame (expected names like shot.1001"
                                 f"{path.suffix}) in sequence folder {self.folder}")
            groups.setdefault((m["prefix"], m["suffix"].lower()), []).append(
                (int(m["number"]), path, len(m["number"])))
        if len(groups) > 1:
            names = ", ".join(f"{p}#{s}" for p, s in sorted(groups))
            raise InputError(f"{self.folder} holds several sequences ({names}); give each its own folder")
        (prefix, suffix), entries = next(iter(groups.items()))
        entries.sort()
        numbers = [n for n, _, _ in entries]
        if len(set(numbers)) != len(numbers):
            dup = next(n for n in numbers if numbers.count(n) > 1)
            raise InputError(f"frame {dup} appears twice in sequence {self.folder} (e.g. shot.1001 and shot.01001)")
        hashes = "#" * min(w for _, _, w in entries)
        for a, b in zip(numbers, numbers[1:], strict=False):
            if b != a + 1:
                raise InputError(f"sequence {self.folder / (prefix + hashes + suffix)} has a gap: frame {a + 1} is "
                                 f"missing (frames {a} -> {b})")
        self.prefix, self.suffix = prefix, suffix
        self.numbers = numbers
        self.paths = [p for _, p, _ in entries]
        self.padding = min(w for _, _, w in entries)
        spec = _spec_of(self.paths[0])
        if self.paths[0].suffix.lower() == ".dpx":
            check_dpx(self.paths[0])
        self.width = spec.full_width or spec.width
        self.height = spec.full_height or spec.height
        self.fps = self.options.fps or _fps_from(spec) or None
        tagged = spec.get_string_attribute("oiio:ColorSpace", "") or None
        config = self.options.ocio or DEFAULT_CONFIG
        space = self.options.colourspace or _known(tagged, config) or (
            "lin_rec709" if str(spec.format) in ("half", "float") else "srgb_texture")
        self.converter = ColourConverter(space, config)
        self.bits = int(spec.get_int_attribute("oiio:BitsPerSample", 0) or spec.format.size() * 8)
        self.info = SourceInfo(str(self.folder), "images", self.width, self.height, self.fps or DEFAULT_FPS,
                               len(self.paths), False, bit_depth=self.bits, first_number=numbers[0])

    def pattern(self) -> str:
        """The sequence's name pattern, printf style (`shot.%04d.exr`)."""
        return f"{self.prefix}%0{self.padding}d{self.suffix}"

    def number(self, index: int) -> int:
        """Frame number of decode index `index` (0-based)."""
        return self.numbers[0] + index

    def read_plate(self, index: int) -> Plate:
        """Frame `index` (0-based) at full precision."""
        if not 0 <= index < len(self.paths):
            raise InputError(f"frame index {index} is outside sequence {self.folder} ({len(self.paths)} frames)")
        return read_plate(self.paths[index], (self.width, self.height))

    def frames(self, start: int = 0, deep: bool = False, plates: bool = False) -> Iterator:
        """Frames from index `start` on: 8-bit working-space RGB, the stem as name, timestamps from the rate.

        With `deep`, `Frame.deep` is the same frame in the working space at full precision (float32, not
        clipped; `image` is its rounding), as io.video's deep frames are; the plate's own values, in its
        own colour space, are `read_plate`'s, and with `plates` each frame carries that Plate too (`Frame.plate`:
        the file is read once for both).
        """
        from facedouble.io.ocio import quantise
        from facedouble.io.video import Frame

        fps = self.fps or DEFAULT_FPS
        for index in range(max(0, start), len(self.paths)):
            plate = self.read_plate(index)
            work = self.converter.to_working(plate.rgb)  # a copy: the plate keeps its own values
            yield Frame(index, index / fps, quantise(work), self.paths[index].stem, work if deep else None,
                        plate if plates else None)


def _known(name: str | None, config: str) -> str | None:
    """`name` if the OCIO config knows it (OIIO's tag for a file), else None."""
    if not name:
        return None
    from facedouble.io.ocio import load_config

    space = load_config(config).getColorSpace(name)
    return space.getName() if space is not None else None


def find_sequence(folder: Path, options: MediaOptions | None = None) -> ImageSequence | None:
    """The image sequence in `folder`, or None when it is a plain folder of 8-bit images (or holds none)."""
    files = sorted(p for p in Path(folder).iterdir()
                   if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SEQUENCE_SUFFIXES)
    if not files:
        return None
    if not any(p.suffix.lower() in HIGH_SUFFIXES for p in files):
        try:
            if _bits(files[0]) <= 8:
                return None
        except InputError:  # a broken PNG/TIFF: the plain image reader reports it, as it always did
            return None
    return ImageSequence(Path(folder), files, options)


def format_frame_path(pattern: str | Path, number: int) -> Path:
    """`shot.%04d.exr` or `shot.####.exr` with frame `number` filled in."""
    text = str(pattern)
    if "#" in text:
        run = re.search(r"#+", text)
        return Path(text[:run.start()] + f"{number:0{len(run.group())}d}" + text[run.end():])
    return Path(text % number)


def is_sequence_pattern(path: str | Path) -> bool:
    """True for an output like `out/shot.%04d.exr` or `out/shot.####.exr` (a numbered image sequence)."""
    name = Path(path).name
    return Path(name).suffix.lower() in SEQUENCE_SUFFIXES and bool(re.search(r"%0?\d*d|#+", name))


def add_media_flags(parser) -> None:  # noqa: ANN001 - argparse.ArgumentParser
    """`--fps`, `--colourspace`, `--ocio`: the same three flags, with one meaning, on extract and merge."""
    parser.add_argument("--fps", type=float, help="frame rate of an image-sequence input (default: its metadata, "
                        "else 25)")
    parser.add_argument("--colourspace", "--colorspace", dest="colourspace", metavar="NAME",
                        help="OCIO colour space of the input plate, e.g. ACEScg or 'Linear Rec.709 (sRGB)' (default: "
                        "the file's tag; untagged EXR = linear Rec.709, integer files = sRGB)")
    parser.add_argument("--ocio", metavar="CONFIG", help=f"OCIO config, a file or a built-in URI (default "
                        f"{_default_config()})")


def _default_config() -> str:
    from facedouble.io.ocio import DEFAULT_CONFIG

    return DEFAULT_CONFIG


def options_from_args(args) -> MediaOptions:  # noqa: ANN001 - argparse.Namespace
    """The MediaOptions of `add_media_flags`' flags (InputError for a rate that is not positive)."""
    fps = getattr(args, "fps", None)
    if fps is not None and not 0 < fps < 1000:
        raise InputError(f"--fps must be a rate in frames per second (0 < fps < 1000), got {fps}")
    return MediaOptions(fps=fps, colourspace=getattr(args, "colourspace", None), ocio=getattr(args, "ocio", None))
