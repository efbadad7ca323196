"""Per-face metadata (schema v2; v1 files still read), stored as JSON inside each face image.

Coordinates are floats in pixels. `transform` maps source-frame pixels to aligned-face pixels (2x3
affine, similarity); `inverse` maps back, so merge can paste a face with sub-pixel accuracy.
v2 adds the optional `labels` (hand-drawn include/exclude mask polygons, facedouble.faceset.labels) and the
optional `xseg` (the mask a trained segmenter predicted, facedouble.mask.segmenter.apply; files without it
read unchanged).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from facedouble.errors import InputError
from facedouble.face.types import FACE_TYPES
from facedouble.faceset.labels import FaceLabels
from facedouble.io import imagemeta
from facedouble.io.atomic import atomic_write_bytes

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)  # v1 = v2 without labels
META_KEY = "facedouble.face"
MAX_META_BYTES = 2_000_000
# Fields older files carry and this build ignores: `identity` (always null; a faceset's consent binding is
# the binding file of facedouble.consent.records, not a field of each face).
RETIRED_FIELDS = frozenset({"identity"})


@dataclasses.dataclass
class FaceMeta:
    """Everything later stages need to know about one extracted face."""

    source: str  # source video or image path, as given
    frame_index: int
    timestamp: float  # seconds
    track_id: int
    face_type: str  # half | mid | full | whole | head
    size: int  # aligned image side in pixels
    frame_size: tuple[int, int]  # (width, height) of the source frame
    landmarks: np.ndarray  # (68, 2) in source-frame pixels
    aligned_landmarks: np.ndarray  # (68, 2) in aligned-image pixels
    transform: np.ndarray  # (2, 3) source -> aligned
    inverse: np.ndarray  # (2, 3) aligned -> source
    detector: str
    score: float
    mesh: np.ndarray | None = None  # (N, 2) dense mesh in source-frame pixels
    embedding: np.ndarray | None = None  # (128,) identity embedding
    interpolated: bool = False  # filled from neighbouring frames, not detected
    labels: FaceLabels | None = None  # (v2) hand-drawn mask polygons, aligned-face pixels
    xseg: dict[str, str] | None = None  # segmenter mask (`mask apply`): {"png": base64 grey PNG, "model": id}
    version: int = SCHEMA_VERSION

    def to_json(self) -> str:
        """Serialize to compact JSON (floats round-trip exactly)."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, np.ndarray):
                value = value.astype(np.float64).tolist()
            elif isinstance(value, tuple):
                value = list(value)
            elif field.name == "labels" and value is not None:
                value = value.to_dict()
            out[field.name] = value
        return json.dumps(out, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> FaceMeta:
        """Parse and validate; InputError with the reason if anything is off."""
        if len(text) > MAX_META_BYTES:
            raise InputError(f"face metadata is oversized ({len(text)} bytes)")
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"face metadata is not valid JSON: {exc.msg}") from None
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: Any) -> FaceMeta:
        """Validate a parsed JSON object against schema v2 (or v1)."""
        if not isinstance(raw, dict):
            raise InputError("face metadata must be a JSON object")
        version = raw.get("version")
        if isinstance(version, bool) or version not in READABLE_VERSIONS:
            raise InputError(f"unsupported face metadata version {version!r} (this build reads "
                             f"{', '.join(map(str, READABLE_VERSIONS))})")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(raw) - names - RETIRED_FIELDS
        if unknown:
            raise InputError(f"face metadata has unknown field(s): {', '.join(sorted(unknown))}")
        required = {f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        missing = required - set(raw)
        if missing:
            raise InputError(f"face metadata lacks field(s): {', '.join(sorted(missing))}")

        def scalar(name: str, kind: type, optional: bool = False) -> Any:
            value = raw.get(name)
            if value is None and optional:
                return None
            ok = isinstance(value, kind) and not isinstance(value, bool) if kind in (int, float) else \
                isinstance(value, kind)
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value, ok = float(value), True
            if not ok or (kind is float and not math.isfinite(value)):
                raise InputError(f"face metadata field '{name}' must be {kind.__name__}")
            return value

        def array(name: str, shape: tuple[int | None, ...], optional: bool = False) -> np.ndarray | None:
            value = raw.get(name)
            if value is None and optional:
                return None
            try:
                arr = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                raise InputError(f"face metadata field '{name}' must be numeric") from None
            if arr.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, arr.shape, strict=True)):
                raise InputError(f"face metadata field '{name}' has shape {arr.shape}, expected {shape}")
            if not np.all(np.isfinite(arr)):
                raise InputError(f"face metadata field '{name}' has non-finite values")
            return arr

        frame_size = raw.get("frame_size")
        if not (isinstance(frame_size, list) and len(frame_size) == 2 and all(
                isinstance(v, int) and v > 0 for v in frame_size)):
            raise InputError("face metadata field 'frame_size' must be [width, height]")
        face_type = scalar("face_type", str)
        if face_type not in FACE_TYPES:
            raise InputError(f"face metadata has unknown face type {face_type!r}")
        size = scalar("size", int)
        if not 16 <= size <= 4096:
            raise InputError(f"face metadata size {size} out of range")
        labels = None
        if raw.get("labels") is not None:
            if version < 2:
                raise InputError("face metadata v1 cannot carry labels")
            try:
                labels = FaceLabels.from_dict(raw["labels"], size=size)
            except InputError as exc:
                raise InputError(f"face metadata field 'labels': {exc}") from None
        xseg = None
        if raw.get("xseg") is not None:
            from facedouble.faceset.xseg import validate_encoded  # cv2 is loaded only for faces with a mask

            try:
                xseg = validate_encoded(raw["xseg"], size)
            except InputError as exc:
                raise InputError(f"face metadata field 'xseg': {exc}") from None
        return cls(
            source=scalar("source", str), frame_index=scalar("frame_index", int),
            timestamp=scalar("timestamp", float), track_id=scalar("track_id", int), face_type=face_type,
            size=size, frame_size=(frame_size[0], frame_size[1]),
            landmarks=array("landmarks", (68, 2)), aligned_landmarks=array("aligned_landmarks", (68, 2)),
            transform=array("transform", (2, 3)), inverse=array("inverse", (2, 3)),
            detector=scalar("detector", str), score=scalar("score", float),
            mesh=array("mesh", (None, 2), optional=True), embedding=array("embedding", (None,), optional=True),
            interpolated=bool(raw.get("interpolated", False)),
            labels=labels, xseg=xseg,
        )


def encode_face(image_rgb: np.ndarray, meta: FaceMeta, fmt: str = "png", jpeg_quality: int = 95) -> bytes:
    """Encode an RGB face image with its metadata embedded."""
    import cv2

    bgr = cv2.cvtColor(np.ascontiguousarray(image_rgb), cv2.COLOR_RGB2BGR)
    if fmt == "png":
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    elif fmt in ("jpg", "jpeg"):
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    else:
        raise InputError(f"unknown face image format {fmt!r} (use png or jpg)")
    if not ok:
        raise InputError("could not encode face image")
    return imagemeta.set_text(buf.tobytes(), META_KEY, meta.to_json())


def write_face(path: str | Path, image_rgb: np.ndarray, meta: FaceMeta, jpeg_quality: int = 95) -> None:
    """Atomically write a face image with embedded metadata; format from the suffix."""
    fmt = Path(path).suffix.lower().lstrip(".")
    atomic_write_bytes(path, encode_face(image_rgb, meta, fmt, jpeg_quality))


def _meta_from_bytes(data: bytes, path: Path) -> FaceMeta:
    try:
        text = imagemeta.get_text(data, META_KEY)
        if text is None:
            raise InputError("no facedouble metadata (not an extracted face)")
        return FaceMeta.from_json(text)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def read_meta(path: str | Path) -> FaceMeta:
    """Read and validate the metadata of a face image without decoding its pixels."""
    path = Path(path)
    return _meta_from_bytes(path.read_bytes(), path)


def read_face(path: str | Path) -> tuple[np.ndarray, FaceMeta]:
    """Read a face image (RGB uint8) and its validated metadata."""
    import cv2

    path = Path(path)
    data = path.read_bytes()
    meta = _meta_from_bytes(data, path)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"{path}: image data is corrupt")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), meta


def read_labels(face_png: str | Path) -> FaceLabels | None:
    """The labels stored in a face image, or None if it has none."""
    return read_meta(face_png).labels


def write_labels(face_png: str | Path, labels: FaceLabels | None) -> None:
    """Store (or with None, clear) labels in a face image atomically; pixels and other metadata stay as they are."""
    path = Path(face_png)
    data = path.read_bytes()
    meta = _meta_from_bytes(data, path)
    meta.labels = None if labels is None else labels.validate(size=meta.size)
    meta.version = SCHEMA_VERSION
    # re-embed the metadata only: the image bytes are not decoded or re-encoded (no JPEG generation loss)
    atomic_write_bytes(path, imagemeta.set_text(data, META_KEY, meta.to_json()))
