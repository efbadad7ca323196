"""Invisible watermark in the face: keyed dither modulation (QIM) of face-aligned, low-frequency luma.

Payload layout (32 bits): a 16-bit payload id followed by a CRC-16/CCITT of the id, the whole word XORed
with a keyed mask. The CRC is the error detector: a decoded word whose CRC does not match is never
reported as a mark. The mask keeps trivial words (all zeros / all ones) from being valid codes.

The key. Each workspace has a secret watermark key (`<workspace>/keys/watermark.key`, 32 random bytes,
mode 0600, made at the first marked render; facedouble.policy.keys). The lattice dither of every bit and
the whitening mask are derived from it (`WatermarkKey`, HMAC-SHA256 with fixed labels), so nothing in the
code says where the lattice points are: reading the mark, and writing one that verifies, both need the
key. The projections (where the bits live, below) stay public: they are the robustness design, and
knowing them lets an attacker damage the mark (as any watermark can be damaged by enough noise) but not
read or forge it. Without the key a projection's lattice phase is a uniform random number, and a word
decoded under a wrong key is a random 32-bit word that passes the CRC 1 time in 65536 per try.

Where the bits live. Each face is aligned to a canonical square (the extract stage's detector and
68-point landmarks, Umeyama similarity to the "full" face-type template: forehead to chin). Over that
square lie 8x8 raised-cosine cells (overlapping, smooth); a cell's feature is its window-weighted mean
luma. The 32 bits are carried by 32 fixed linear combinations of the 64 cell features
(`watermark_basis.PROJECTIONS`, derived by tools/derive_watermark_basis.py): the generalized eigenvectors
that maximise (mark energy budget) / (noise after H.264 CRF 28 + 50% downscale, alignment included),
measured on 6 GRID clips that are not the benchmark clips; all of them ignore a uniform brightness change
and linear brightness ramps. Each projection is quantized to a keyed lattice: bit b puts projection b
on `step * (k + dither[b] + bit / 2)` (dither from the key). The change is added to the frame as a smooth
luma pattern (the same on R, G and B) warped back from the square: no chroma change, no edges, nothing
finer than a cell.

Why QIM and not spread spectrum: the decoder compares each projection with the lattice, so the host
face does not interfere (spread-spectrum luma with correlation decoding got ~80% bits right at 40 dB).
What remains is the difference between the alignment at embedding and at detection, and compression.

Temporal layout: every frame with a face is marked, and by default the detector (looking near the face's box,
not at the whole frame) and the landmarker align the face on every frame, as verification does. Key frames
(KEY_INTERVAL > 1: 1 frame in KEY_INTERVAL per track aligned, merge's own motion of the face carrying that
alignment to the frames between; `Watermarker`) make marking nearly free, but on GRID they lost the mark after
CRF 28 + 50 % where per-frame alignment kept it (figures in the `Watermarker` docstring;
tests/trust/test_watermark_speed_path.py), so they are off. The lattice point of each bit is kept from one
frame to the next while the face's own projection stays within HYSTERESIS * step of it, so the mark changes
little between frames. H.264 predicts frames from their neighbours and drops small changes: when each frame
was quantized to its own nearest point, only 50-65% of the mark's amplitude survived in predicted frames (CRF
28, with and without the 50% downscale), and a bit whose face value sat near a lattice boundary flipped its pattern back
and forth and was wiped out. Kept points cost energy, so each frame has a budget: the mark's RMS inside the
face box may not exceed BOX_RMS_LEVELS (face-box PSNR >= 40.3 dB after rounding); over it, bits return to
their nearest points (largest saving first) and, if that is not enough, the pattern is scaled down.

Detection: frames are sampled across the whole clip (`sample_windows`: DETECT_WINDOWS runs of
DETECT_WINDOW consecutive frames, evenly spaced from the first frame to the last, so footage put before
or after a render does not hide it); every face of every sampled frame is aligned the same way; per
projection the soft value cos(2 pi (y / step - dither - bit / 2)) is averaged over the observations of
each window and over all of them, and each of these averages is decoded (the first that passes wins). Compression
shifts the landmarks of a small face systematically, so one alignment correction per clip (shift and
scale of the square: `_SHIFTS` x `_SCALES`) is chosen, the one whose averaged soft values are the most
decisive. The hard word must then pass the CRC, exactly or after flipping one of its 5 least reliable
bits: at most 6 tries of a 1-in-65536 check per average, (DETECT_WINDOWS + 1) averages per clip:
< 6e-4 false positives per unmarked clip whatever it shows (an unmarked face decodes to a stable but
arbitrary word).

History (same benchmark, CRF 28 + 50%, at ~40 dB): the RivaGAN mark this replaces survived only at ~29 dB
(a visible chroma mottle); luma-only or chroma-only RivaGAN, texture masking, low-pass filtering and a
spread-spectrum luma mark all failed at 40 dB. QIM with random orthonormal projections of 6x6 cells
aligned on retinaface's 5 points: alignment noise ~5 levels, hopeless; on the 68 mesh points: per-frame
accuracy 0.75, 2 of 3 clips; noise-fitted projections of 8x8 cells: 0.83; kept lattice points (0.6 step):
0.86, but over 5 payloads x 3 clips one of 15 was not found and one frame fell to 39.6 dB; kept points
(0.8 step) under the face-box budget: 15 of 15 found, every frame >= 40.5 dB, per-frame accuracy 0.82-0.97.

Keyed (2026-12-02, bench/trust.py, 3 keys x the 3 clips below, Intel Xeon Sapphire Rapids class, 2 cores):
face-box PSNR 41.7 dB mean, worst frame 40.5; CRF 28 + 50% per-frame accuracy 0.893, 9 of 9 found; unmarked
0 of 18. Before the key (one public dither):
Measured (bench/trust.py, GRID pwij3p/bbaf2n/swiz3n, 50 frames each = 2 s, 1 thread): face-box PSNR
41.7 dB mean, worst frame 40.5; RMS Cr/Cb change 0.02 levels. Per-frame bit accuracy, clips found, smallest
averaged soft value of a right bit (1 = clean, 0 = coin toss, negative = wrong and corrected by the
CRC search): lossless 1.000 3/3 0.95; CRF 23 0.990 3/3 0.63; CRF 28 0.967 3/3 0.47; JPEG 75 1.000 3/3
0.92; resize 50% 0.999 3/3 0.84; crop 80% off-centre 1.000 3/3 0.89; CRF 28 + 50% 0.878 3/3 -0.07 (one
clip needed its one-bit correction: the margin there is thin). Unmarked: 0 of 6 (the 3 clips, plain and
CRF 28 + 50%); the tests check all 9 GRID clips. The test render (pwij3p, CRF 18, then CRF 28 + 50%):
worst frame 40.6 dB, found from its first 12 frames, weakest bit +0.32 over 50 frames. 2-s excerpts of
marked 3-s clips (pwij3p, bbaf2n, swiz3n, lbbc2a; frames 0-49 and 25-74), CRF 28 + 50%: 7 of 8 found (the
bbaf2n mid-clip excerpt had 2 wrong bits; hysteresis 0.65 gave 5 of 8, 1.0 gave 7 of 8). Cost per frame:
embed ~45-85 ms (detector, landmarks, pattern; ~4-8 ms on a carried frame with KEY_INTERVAL > 1); detection
~17-35 ms (detector, landmarks) + ~3-5 ms (alignment search and vote), depending on the load of the shared machine.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from facedouble.colour.luma import luma as rec601_luma
from facedouble.errors import InputError
from facedouble.face.box import iou
from facedouble.trust.watermark_basis import PROJECTIONS

ID_BITS = 16
MAX_PAYLOAD_ID = (1 << ID_BITS) - 1
GRID_CELLS = 8  # cells per side of the aligned face square
CANON_SIZE = 64  # samples per side of the aligned luma the features are measured on
_PATTERN_SIZE = 128  # samples per side of the mark pattern before it is warped into the frame
FACE_TYPE = "full"  # facedouble.face.types: the square spans forehead to chin
RMS_LEVELS = 2.0  # mean luma change over the aligned square (design value; sets the lattice step)
HYSTERESIS = 0.8  # keep a bit's lattice point while the face stays within this many steps of it
BOX_RMS_LEVELS = 2.4  # ... unless the mark's RMS in the face box would exceed this (PSNR 40.3 dB with rounding)
MAX_FACES = 4  # faces per frame looked at by the detector
CROP_GROW = 2.0  # embedding: the detector looks at the face box grown this much (square), not the whole frame
CROP_MAX_AREA = 0.5  # ... unless that window covers more than this share of the frame (then the frame is as cheap)
# Embedding with merge's motion: detector + landmarks on 1 frame in KEY_INTERVAL per track, carried between. 1 (every
# frame aligned, as verification does) is the default: 8, 4 and 2 lose the mark after CRF 28 + 50 % where per-frame
# alignment keeps it (GRID swiz3n, one key, 6 start frames: 3, 5 and 5 of 6 found vs 6; Watermarker docstring).
KEY_INTERVAL = 1
KEY_MAX_MOTION = 0.1  # (interval > 1) a key frame also once the face moved this far (RMS over the square, in sides)
CARRY_LANDMARKS = False  # True: between key frames the landmarker still aligns the face (only the detector skipped)
DETECT_WINDOW = 50  # consecutive frames per sampled window (2 s at 25 fps: the shortest excerpt we must find)
DETECT_WINDOWS = 5  # windows per clip, evenly spaced over it (at most 250 frames are examined)
DETECT_MAX_FRAMES = DETECT_WINDOW * DETECT_WINDOWS
_WEAKEST = 5  # a word failing its CRC may have one of its 5 least reliable bits flipped
# alignment corrections tried per clip: shift (fraction of the square) and scale of the square
_SHIFTS = tuple(float(v) for v in np.linspace(-0.016, 0.016, 9))
_SCALES = (0.98, 0.99, 1.0, 1.01, 1.02)


@dataclasses.dataclass
class Detection:
    """What `detect_video` / `detect_image` found."""

    found: bool
    payload: int | None
    frames_voted: int  # face observations combined (every face in every frame examined)
    frames_examined: int
    confidence: float  # mean fraction of the observations' own bits that agree with the payload (0 if none)

    def to_dict(self) -> dict:
        """Plain-dict view for JSON output."""
        return dataclasses.asdict(self)


def crc16(value: int) -> int:
    """CRC-16/CCITT-FALSE of a 16-bit value (two bytes, big-endian)."""
    crc = 0xFFFF
    for byte in value.to_bytes(2, "big"):
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


@dataclasses.dataclass(frozen=True, eq=False)
class WatermarkKey:
    """What the secret key decides: each bit's lattice dither and the whitening mask (never the key itself)."""

    dither: np.ndarray  # (32,) lattice offsets, fractions of the step, uniform in [0, 1)
    mask: int  # 32-bit whitening mask
    key_id: str  # a short public fingerprint of the key, for reports (says which key, reveals nothing)

    @classmethod
    def from_secret(cls, secret: bytes) -> WatermarkKey:
        """Derive the watermark parameters from a secret (>= 16 bytes)."""
        import hashlib
        import hmac

        if len(secret) < 16:
            raise InputError("a watermark key needs at least 16 bytes")

        def derive(label: bytes) -> bytes:
            return hmac.new(secret, b"facedouble-watermark-v1/" + label, hashlib.sha256).digest()

        words = np.frombuffer(derive(b"dither-0") + derive(b"dither-1") + derive(b"dither-2")
                              + derive(b"dither-3"), dtype=">u4")[:32]
        dither = words.astype(np.float64) / 2.0**32
        mask = int.from_bytes(derive(b"mask")[:4], "big")
        return cls(dither=dither, mask=mask, key_id=derive(b"id")[:4].hex())

    @classmethod
    def from_file(cls, path: str | Path) -> WatermarkKey:
        """The key in a key file (`verify --key FILE`; a workspace's keys/watermark.key)."""
        from facedouble.policy.keys import read_key

        return cls.from_secret(read_key(path))

    @classmethod
    def for_workspace(cls, workspace: str | Path | None, create: bool = False) -> WatermarkKey:
        """The workspace's watermark key (made, mode 0600, when `create` and missing)."""
        from facedouble.policy.keys import workspace_key

        return cls.from_secret(workspace_key(workspace, KEY_NAME, create=create))


KEY_NAME = "watermark"


def encode_payload(payload_id: int, key: WatermarkKey) -> np.ndarray:
    """32 bits (float32 0/1, MSB first) that carry `payload_id` and its check bits under `key`."""
    if not 0 <= payload_id <= MAX_PAYLOAD_ID:
        raise InputError(f"watermark payload id must be 0..{MAX_PAYLOAD_ID}, got {payload_id}")
    word = ((payload_id << 16) | crc16(payload_id)) ^ key.mask
    return np.array([(word >> (31 - i)) & 1 for i in range(32)], dtype=np.float32)


def decode_payload(bits: np.ndarray, key: WatermarkKey) -> int | None:
    """Payload id from 32 hard bits, or None if the check bits do not match."""
    word = 0
    for bit in np.asarray(bits).astype(int).ravel():
        word = (word << 1) | int(bit)
    word ^= key.mask
    payload_id, check = word >> 16, word & 0xFFFF
    return payload_id if crc16(payload_id) == check else None


# --- geometry: aligned face square, cells -------------------------------------------------------------

@functools.cache
def _detector():
    from facedouble.extract.detectors import get_detector

    return get_detector("retinaface")


_per_thread = threading.local()


def _landmarker():
    """The landmarker of this thread: MediaPipe's graph is not thread-safe, and merge aligns the faces it marks
    on its compositing threads (`Watermarker.align_alone`)."""
    mesh = getattr(_per_thread, "landmarker", None)
    if mesh is None:
        from facedouble.extract.landmarks import get_landmarker

        mesh = _per_thread.landmarker = get_landmarker("mediapipe")
    return mesh


def _square_transform(frame_rgb: np.ndarray, points5: np.ndarray, box) -> np.ndarray | None:
    """2x3 similarity from frame pixels to the unit face square, or None if no landmarks are found."""
    from facedouble.face.align import face_transform

    mesh = _landmarker().from_points5(frame_rgb, np.asarray(points5, np.float64), np.asarray(box, np.float64))
    return None if mesh is None else face_transform(mesh.landmarks, FACE_TYPE, 1)


def _faces(frame_rgb: np.ndarray, limit: int = MAX_FACES) -> list[tuple[np.ndarray, tuple, np.ndarray]]:
    """(unit-square transform, detector box, detector's 5 points) of up to `limit` faces, best detection first."""
    faces = []
    for det in _detector().detect(frame_rgb)[:limit]:
        matrix = _square_transform(frame_rgb, det.points, det.box)
        if matrix is not None:
            faces.append((matrix, tuple(float(v) for v in det.box), np.asarray(det.points, np.float64)))
    return faces


_STRIDE = 32  # the detector's coarsest anchor stride (RetinaFace: 8, 16, 32), in its input's pixels


def _detector_scale(shape: tuple[int, ...]) -> float:
    """The scale the detector runs a whole frame of `shape` at (RetinaFaceDetector: long side <= max_side)."""
    return min(1.0, _detector().max_side / max(shape[:2]))


def _crop_window(shape: tuple[int, ...], box, grow: float = CROP_GROW) -> tuple[int, int, int, int] | None:
    """Frame rectangle (x0, y0, x1, y1) around `box` (grown `grow` times its larger side, square) that the
    detector can look at instead of the whole frame: its corners lie on the detector's coarsest stride grid
    at the full-frame scale, so the network sees the pixels it would see in the whole frame, in the same
    anchor cells. None when that rectangle is not much smaller than the frame (then the frame is as cheap)."""
    h, w = shape[:2]
    scale = _detector_scale(shape)
    cell = _STRIDE / scale  # frame pixels per coarsest detector cell
    x0, y0, x1, y1 = (float(v) for v in box)
    half = grow * max(x1 - x0, y1 - y0, 1.0) / 2
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    gx0, gy0 = (max(0, int(np.floor((c - half) / cell) * cell)) for c in (cx, cy))
    gx1 = min(w, int(np.ceil(np.ceil((cx + half) / cell) * cell)))
    gy1 = min(h, int(np.ceil(np.ceil((cy + half) / cell) * cell)))
    if gx1 - gx0 < cell or gy1 - gy0 < cell or (gx1 - gx0) * (gy1 - gy0) > CROP_MAX_AREA * w * h:
        return None
    return gx0, gy0, gx1, gy1


def _faces_near(frame_rgb: np.ndarray, box, limit: int = MAX_FACES) -> list[tuple[np.ndarray, tuple, np.ndarray]]:
    """`_faces`, with the detector looking only at `_crop_window` around `box` (a 720p frame costs the
    detector 5-8x a face's window); the landmarker then runs on the whole frame, as `_faces` does.

    The window is shrunk by the full-frame scale (INTER_AREA, as the detector shrinks a frame) and its corners
    sit on the coarsest stride grid, so the face's detection equals the full frame's up to the network's
    padding at the window's edges, a face box and more away (tests/trust/test_watermark_speed_path.py
    checks the resulting transforms on GRID frames). The whole frame when the window is not much smaller.
    A face the window misses is left to `_transform_for_box`'s fallback: the whole frame shows the detector
    the same pixels there, so it would miss it too."""
    import cv2

    window = _crop_window(frame_rgb.shape, box)
    if window is None:
        return _faces(frame_rgb, limit)
    x0, y0, x1, y1 = window
    scale = _detector_scale(frame_rgb.shape)
    crop = frame_rgb[y0:y1, x0:x1]
    size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
    small = crop if scale == 1.0 else cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    sx, sy = (x1 - x0) / small.shape[1], (y1 - y0) / small.shape[0]
    faces = []
    for det in _detector().detect(np.ascontiguousarray(small))[:limit]:
        points = det.points * (sx, sy) + (x0, y0)
        frame_box = det.box * (sx, sy, sx, sy) + (x0, y0, x0, y0)
        matrix = _square_transform(frame_rgb, points, frame_box)
        if matrix is not None:
            faces.append((matrix, tuple(float(v) for v in frame_box), points))
    return faces


def _align_for_box(frame_rgb: np.ndarray, box, detected: list[tuple] | None = None
                   ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """(square transform, 5 points, box) of the face at `box`, found the way the detector will find it
    (`detected`: the frame's `_faces`, when the caller already has them; else the detector looks near the box
    only); the points and box are what the landmarker was given (its seed)."""
    faces = [f for f in (_faces_near(frame_rgb, box) if detected is None else detected) if iou(f[1], box) > 0.3]
    if faces:
        matrix, found, points = max(faces, key=lambda f: iou(f[1], box))
        return matrix, points, np.asarray(found, np.float64)
    # no detection there (e.g. a crop the detector misses): landmarks from the box's typical eye/nose/mouth
    x0, y0, x1, y1 = box
    rel = np.array([[0.32, 0.4], [0.68, 0.4], [0.5, 0.58], [0.36, 0.76], [0.64, 0.76]])
    points = np.array([x0, y0]) + rel * [x1 - x0, y1 - y0]
    return _square_transform(frame_rgb, points, box), points, np.asarray(box, np.float64)


def _transform_for_box(frame_rgb: np.ndarray, box, detected: list[tuple] | None = None) -> np.ndarray | None:
    """The square transform of the face at `box`, found the way the detector will find it (`_align_for_box`)."""
    return _align_for_box(frame_rgb, box, detected)[0]


def _grid_matrix(matrix: np.ndarray, size: int) -> np.ndarray:
    """Frame pixels -> pixel indices of a size x size sampling of the unit square (pixel centres)."""
    scaled = matrix * size
    scaled[:, 2] -= 0.5
    return scaled


def _footprint(matrix: np.ndarray, shape: tuple[int, ...], margin: int) -> tuple[int, int, int, int]:
    """Frame rectangle (x0, y0, x1, y1) holding the unit face square of `matrix`, grown by `margin` px and
    clipped to the frame: all the pixels the mark reads or writes, so the rest of a 4K frame costs nothing."""
    import cv2

    corners = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    xy = corners @ cv2.invertAffineTransform(matrix).T
    (x0, y0), (x1, y1) = np.floor(xy.min(axis=0)) - margin, np.ceil(xy.max(axis=0)) + margin + 1
    h, w = shape[:2]
    return int(max(0, x0)), int(max(0, y0)), int(min(w, max(0, x1))), int(min(h, max(0, y1)))


def _canonical_luma(frame_rgb: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(CANON_SIZE, CANON_SIZE) luma of the aligned face square (low-passed first when shrinking)."""
    import cv2

    grid = _grid_matrix(matrix, CANON_SIZE)
    scale = float(np.sqrt(abs(np.linalg.det(grid[:, :2]))))
    sigma = 0.45 / scale if scale < 0.8 else 0.0
    # OpenCV's float Gaussian reaches 4 sigma: this margin keeps every pixel the warp samples exact
    x0, y0, x1, y1 = _footprint(matrix, frame_rgb.shape, int(np.ceil(4 * sigma)) + 2)
    luma = rec601_luma(frame_rgb[y0:y1, x0:x1])
    if sigma:
        luma = cv2.GaussianBlur(luma, (0, 0), sigma)
    grid[:, 2] += grid[:, :2] @ np.array([x0, y0], np.float64)
    return cv2.warpAffine(luma, grid, (CANON_SIZE, CANON_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT).astype(np.float64)


def _windows_1d(size: int, shift: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """(GRID_CELLS, size) raised-cosine windows along one side of the square sampled at `size` points.

    Cell centres at (i + 1) / (GRID_CELLS + 1); each window falls to 0 at its neighbours' centres, so
    the windows sum to 1 between the outer centres and vanish at the square's edges. `shift` / `scale`
    move the windows (the detection-time alignment correction).
    """
    u = scale * ((np.arange(size) + 0.5) / size - 0.5) + 0.5 + shift
    t = u * (GRID_CELLS + 1) - 1
    d = np.abs(t[None, :] - np.arange(GRID_CELLS)[:, None])
    return np.where(d < 1, np.cos(np.pi * d / 2) ** 2, 0.0)


def _windows_2d(size: int) -> np.ndarray:
    """(GRID_CELLS**2, size, size) cell windows, row-major (vertical cell index first)."""
    w = _windows_1d(size)
    return (w[:, None, :, None] * w[None, :, None, :]).reshape(GRID_CELLS**2, size, size)


def cell_features(luma: np.ndarray | list, shift=(0.0, 0.0), scale: float = 1.0) -> np.ndarray:
    """Window-weighted mean luma of every cell: (..., GRID_CELLS**2) from (..., CANON_SIZE, CANON_SIZE)."""
    wu = _windows_1d(CANON_SIZE, shift[0], scale)
    wv = _windows_1d(CANON_SIZE, shift[1], scale)
    sums = wv @ np.asarray(luma, np.float64) @ wu.T
    norm = wv.sum(1)[:, None] * wu.sum(1)[None, :]
    return (sums / norm).reshape(*sums.shape[:-2], GRID_CELLS**2)


@dataclasses.dataclass(frozen=True)
class _Design:
    step: float  # lattice step of every projection (projections are in units of their noise)
    energy: np.ndarray  # (32,) mean squared luma over the square per unit squared change of each projection
    embed: np.ndarray  # (cells, 32) least-energy feature change per unit change of each projection
    amplitude: np.ndarray  # (cells, cells) feature change -> window amplitudes (inverse of the overlaps)
    windows: np.ndarray  # (GRID_CELLS, _PATTERN_SIZE) 1-D cell windows of the pattern (a cell's is an outer product)


@functools.cache
def cell_geometry() -> tuple[np.ndarray, np.ndarray]:
    """(amplitude, cost) of the cells: `amplitude @ c` are the window amplitudes that change the cell
    features by `c` (the windows overlap), and `c @ cost @ c` is that change's mean squared luma."""
    w = _windows_2d(CANON_SIZE).reshape(GRID_CELLS**2, -1)
    overlap = w @ w.T
    amplitude = np.linalg.inv(overlap / w.sum(1)[:, None])  # inverse of: amplitudes -> feature change
    return amplitude, amplitude.T @ overlap @ amplitude / w.shape[1]


@functools.cache
def _design() -> _Design:
    """Lattice step and embedding matrices implied by PROJECTIONS and RMS_LEVELS."""
    amplitude, cost = cell_geometry()
    inverse = np.linalg.inv(cost)
    energy = 1.0 / np.einsum("bn,nm,bm->b", PROJECTIONS, inverse, PROJECTIONS)  # per unit projection change
    embed = inverse @ PROJECTIONS.T * energy[None, :]  # least-energy change; leaves the other projections
    step = float(np.sqrt(12.0 * RMS_LEVELS**2 / energy.sum()))  # uniform quantization error: step^2 / 12
    return _Design(step, energy, embed, amplitude, _windows_1d(_PATTERN_SIZE))


def _lattice_offset(bits: np.ndarray, step: float, dither: np.ndarray) -> np.ndarray:
    return (dither + np.asarray(bits, np.float64) / 2.0) * step


# --- embedding ----------------------------------------------------------------------------------------

@dataclasses.dataclass
class _TrackState:
    frame_index: int
    targets: np.ndarray  # (32,) lattice points the projections were put on in that frame


@dataclasses.dataclass
class _KeyState:
    """A track's last key frame: where the detector and landmarker last aligned its face."""

    key_index: int  # the key frame
    frame_index: int  # the last frame the transform was carried to (carrying needs consecutive frames)
    square: np.ndarray  # 3x3 frame -> unit square found on the key frame
    from_motion: np.ndarray  # 3x3 inverse of merge's frame -> aligned-crop transform on the key frame
    points: np.ndarray  # (5, 2) the detector's points on the key frame (the landmarker's seed)
    box: np.ndarray  # (4,) its box


def _affine3(matrix) -> np.ndarray:
    return np.vstack([np.asarray(matrix, np.float64).reshape(2, 3), [0.0, 0.0, 1.0]])


_UNIT_GRID = np.c_[np.stack(np.meshgrid(np.linspace(0, 1, 9), np.linspace(0, 1, 9)), -1).reshape(-1, 2), np.ones(81)]


def square_distance(a: np.ndarray, b: np.ndarray) -> float:
    """RMS distance, in sides of the unit square, between where two frame -> square transforms put the same
    frame points (a 9 x 9 grid over `a`'s square): how far apart two alignments of a face are."""
    import cv2

    points = _UNIT_GRID @ cv2.invertAffineTransform(np.asarray(a, np.float64)[:2]).T
    moved = np.c_[points, np.ones(len(points))] @ np.asarray(b, np.float64)[:2].T
    return float(np.sqrt(((moved - _UNIT_GRID[:, :2]) ** 2).sum(1).mean()))


def _box_mean_square(pattern: np.ndarray, origin: tuple[int, int], shape: tuple[int, ...], box) -> float:
    """Mean square of a pattern (placed at `origin` in a frame of `shape`, zero elsewhere) inside a face
    box clipped to the frame (the face-box PSNR's region)."""
    x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(shape[1], max(0, x1)), min(shape[0], max(0, y1))
    area = max(0, x1 - x0) * max(0, y1 - y0)
    ox, oy = origin
    region = pattern[max(0, y0 - oy):max(0, y1 - oy), max(0, x0 - ox):max(0, x1 - ox)]
    return float((region.astype(np.float64) ** 2).sum()) / area if area else 0.0


def _within_budget(targets: np.ndarray, nearest: np.ndarray, projections: np.ndarray, energy: np.ndarray,
                   budget: float) -> np.ndarray:
    """Kept lattice points, moved to the nearest ones (largest saving first) until the mark's mean squared
    luma is within `budget` (or every bit is on its nearest point)."""
    kept, near = (targets - projections) ** 2 * energy, (nearest - projections) ** 2 * energy
    total = float(kept.sum())
    targets = targets.copy()
    for bit in np.argsort(near - kept):
        if total <= budget or near[bit] >= kept[bit]:
            break
        targets[bit], total = nearest[bit], total - kept[bit] + near[bit]
    return targets


def _with_motion(faces: list[tuple]) -> list[tuple]:
    """(box, track id, motion or None) of each face that has a box."""
    return [(face[0], face[1], face[2] if len(face) > 2 else None) for face in faces if face[0] is not None]


class Watermarker:
    """Embeds one payload id into each face (the API merge calls).

    Call `embed` on every frame that shows a face, in frame order, passing `frame_index` and a `track_id`
    per face: consecutive frames of a track keep their lattice points (see the module docstring).
    `strength` scales the per-frame face-box budget BOX_RMS_LEVELS (1.0: the measured design point; below 1
    the mark is fainter and less robust). The lattice step is part of the format and never changes.

    With KEY_INTERVAL > 1 the face's motion (merge's frame -> aligned-crop transform of the face, `motion`)
    makes marking cheap: the detector and landmarker align the face on a key frame (the first of a track, then
    every KEY_INTERVAL frames, or sooner when the face moved KEY_MAX_MOTION), and the frames between carry
    that alignment with merge's motion. Carried alignments differ from per-frame detection by about the
    landmarker's own frame-to-frame jitter (~0.0025 of the square on GRID), a fifth of what verification's
    detection on a CRF 28 + 50 % copy differs by (~0.013): CRF 28 + 50 % bit accuracy is unchanged (0.884 vs
    0.885 per frame over 18 GRID key x clip x start runs), but the weakest runs lose margin (16 of 18 found
    vs 18 at interval 8). On the worst of them (swiz3n, one key, 50 frames from 6 start frames, 2026-12-07)
    intervals 8, 4 and 2 found 3, 5 and 5 of 6, every frame aligned 6 of 6; the mark being found after CRF 28
    + 50 % is a requirement, so the default is 1: every frame aligned (the detector near the box and the
    cheaper pattern keep their savings). CARRY_LANDMARKS runs the landmarker on every frame (0.0009 from
    per-frame; costs ~10-15 ms a frame; 16 of 18 found as well). Without `motion` every frame is detected.
    `reset` forgets every track (a segment start: resumed and sharded renders must equal a single run).
    """

    def __init__(self, payload_id: int, key: WatermarkKey, fps: float = 25.0, strength: float = 1.0):
        if not isinstance(key, WatermarkKey):
            raise InputError("the watermark needs its key (WatermarkKey.for_workspace / from_file)")
        self.payload_id, self.key = payload_id, key
        self.bits = encode_payload(payload_id, key)
        self.fps = fps
        self.strength = strength
        self._tracks: dict[int, _TrackState] = {}
        self._keys: dict[int, _KeyState] = {}

    def reset(self) -> None:
        """Forget every track's lattice points and key frame: the next frame starts afresh."""
        self._tracks.clear()
        self._keys.clear()

    @staticmethod
    def _pattern(change: np.ndarray, matrix: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, tuple[int, int]]:
        """The luma pattern that moves the projections by `change`: (float32 values over the face square's
        footprint, the footprint's top-left corner in the frame); zero everywhere else."""
        import cv2

        design = _design()
        amplitudes = design.amplitude @ (design.embed @ change)
        # the sum of the cells' windows (_windows_2d) weighted by their amplitudes, as two small products: each
        # 2-D window is the outer product of a vertical and a horizontal 1-D window
        w = design.windows
        pattern = (w.T @ amplitudes.reshape(GRID_CELLS, GRID_CELLS) @ w).astype(np.float32)
        x0, y0, x1, y1 = _footprint(matrix, shape, 2)  # bilinear sampling reaches 1 px past the square
        if x1 <= x0 or y1 <= y0:  # the square lies outside the frame
            return np.zeros((0, 0), np.float32), (0, 0)
        inverse = cv2.invertAffineTransform(_grid_matrix(matrix, _PATTERN_SIZE))
        inverse[:, 2] -= (x0, y0)
        back = cv2.warpAffine(pattern, inverse, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return back, (x0, y0)

    def embed_faces(self, frame_rgb: np.ndarray, faces: list[tuple], frame_index: int | None = None,
                    alignment: list[np.ndarray | None] | None = None) -> np.ndarray:
        """`embed` for every (box, track id) or (box, track id, motion) of one frame. Faces that need the
        detector (see the class docstring) share one whole-frame pass when there are several; one face
        alone has it look near its box only (the detector is most of a mark's cost). `alignment`: what
        `align_alone` returned for this frame and these faces (computed elsewhere, e.g. on another thread)."""
        self._check(frame_rgb)
        faces = _with_motion(faces)
        if alignment is None or len(alignment) != len(faces):
            alignment = self.align_faces(frame_rgb, faces, frame_index)
        marked = frame_rgb.copy()
        for (box, track_id, _), matrix in zip(faces, alignment, strict=True):
            self._embed(marked, box, frame_index, track_id, matrix)
        return marked

    @staticmethod
    def align_alone(frame_rgb: np.ndarray, faces: list[tuple]) -> list[np.ndarray | None] | None:
        """The alignments `embed_faces` would compute for this frame's faces when they depend on this frame
        alone (KEY_INTERVAL 1, the default: every face detected and landmarked on every frame), so they can be
        computed on any thread, in any order, ahead of the marking itself (which must go in frame order);
        None when key frames carry alignments from frame to frame (then `embed_faces` aligns in order)."""
        if KEY_INTERVAL != 1:
            return None
        faces = _with_motion(faces)
        detected = _faces(frame_rgb) if len(faces) > 1 else None
        return [_align_for_box(frame_rgb, tuple(float(v) for v in box), detected)[0] for box, _, _ in faces]

    def align_faces(self, frame_rgb: np.ndarray, faces: list[tuple], frame_index: int | None = None
                    ) -> list[np.ndarray | None]:
        """The frame -> unit square transform the mark of each (box, track id, motion) is laid on (None: a
        face the detector and landmarker cannot align), from a key frame or carried (the class docstring);
        `embed_faces` calls it, and it moves the tracks' key frames on as that does."""
        carried = [self._carried(frame_rgb, track_id, frame_index, motion) for _, track_id, motion in faces]
        detected = _faces(frame_rgb) if sum(matrix is None for matrix in carried) > 1 else None
        return [self._key(frame_rgb, box, track_id, frame_index, motion, detected) if matrix is None else matrix
                for (box, track_id, motion), matrix in zip(faces, carried, strict=True)]

    def embed(self, frame_rgb: np.ndarray, face_box_xyxy, frame_index: int | None = None,
              track_id: int = 0, motion=None) -> np.ndarray:
        """Return a copy of the RGB uint8 frame with the payload embedded in the face at the box.

        The face is aligned with the detector and landmarker that verification uses; a face they cannot
        find is left unmarked. `frame_index` None means a still (no continuity with other frames).
        `motion`: merge's 2x3 frame -> aligned-crop transform of this face (see the class docstring).
        """
        self._check(frame_rgb)
        return self.embed_faces(frame_rgb, [(face_box_xyxy, track_id, motion)], frame_index)

    def _carried(self, frame_rgb: np.ndarray, track_id: int, frame_index: int | None, motion
                 ) -> np.ndarray | None:
        """The track's alignment on this frame from its key frame and merge's motion, or None when this frame
        must be a key frame (no key, not the next frame, KEY_INTERVAL reached, moved too far, no motion).
        CARRY_LANDMARKS: the landmarker aligns the face, seeded with the key frame's detection carried here;
        else (or when it finds no face) the key frame's alignment itself is carried."""
        key = self._keys.get(track_id)
        if key is None or motion is None or frame_index is None or key.frame_index != frame_index - 1 \
                or frame_index - key.key_index >= KEY_INTERVAL:
            return None
        motion = _affine3(motion)
        square = key.square @ key.from_motion @ motion
        if square_distance(key.square, square) > KEY_MAX_MOTION:
            return None
        key.frame_index = frame_index
        if CARRY_LANDMARKS:
            to_here = np.linalg.inv(motion) @ np.linalg.inv(key.from_motion)  # key frame -> this frame
            points = key.points @ to_here[:2, :2].T + to_here[:2, 2]
            x0, y0, x1, y1 = key.box
            corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]]) @ to_here[:2, :2].T + to_here[:2, 2]
            matrix = _square_transform(frame_rgb, points, np.r_[corners.min(0), corners.max(0)])
            if matrix is not None:
                return matrix
        return square[:2]

    def _key(self, frame_rgb: np.ndarray, box, track_id: int, frame_index: int | None, motion,
             detected: list[tuple[np.ndarray, tuple]] | None) -> np.ndarray | None:
        """Align the face at `box` with the detector and landmarker; remember it as the track's key frame."""
        matrix, points, seed_box = _align_for_box(frame_rgb, tuple(float(v) for v in box), detected)
        if matrix is None or motion is None or frame_index is None:
            self._keys.pop(track_id, None)
        else:
            self._keys[track_id] = _KeyState(frame_index, frame_index, _affine3(matrix),
                                             np.linalg.inv(_affine3(motion)), points, seed_box)
        return matrix

    @staticmethod
    def _check(frame_rgb: np.ndarray) -> None:
        if frame_rgb.dtype != np.uint8 or frame_rgb.ndim != 3:
            raise InputError("watermark embed expects an RGB uint8 frame")

    def _embed(self, frame_rgb: np.ndarray, face_box_xyxy, frame_index: int | None, track_id: int,
               matrix: np.ndarray | None) -> None:
        """Mark the face aligned by `matrix` (frame -> unit square) in place (the callers own the copy: one per
        frame, however many faces); None leaves it unmarked."""
        if matrix is None:
            return
        design = _design()
        step = design.step
        projections = PROJECTIONS @ cell_features(_canonical_luma(frame_rgb, matrix))
        offset = _lattice_offset(self.bits, step, self.key.dither)
        nearest = np.round((projections - offset) / step) * step + offset
        state = self._tracks.get(track_id)
        if frame_index is not None and state is not None and state.frame_index == frame_index - 1:
            targets = np.where(np.abs(state.targets - projections) > HYSTERESIS * step, nearest, state.targets)
        else:
            targets = nearest
        back, origin = self._pattern(targets - projections, matrix, frame_rgb.shape)
        box_ms = _box_mean_square(back, origin, frame_rgb.shape, face_box_xyxy)
        total = float(design.energy @ (targets - projections) ** 2)
        budget = (BOX_RMS_LEVELS * self.strength) ** 2
        if box_ms > budget and total > 0:  # over budget in the face box: give up kept points, then scale
            targets = _within_budget(targets, nearest, projections, design.energy, total * budget / box_ms)
            back, origin = self._pattern(targets - projections, matrix, frame_rgb.shape)
            box_ms = _box_mean_square(back, origin, frame_rgb.shape, face_box_xyxy)
            if box_ms > budget:
                back *= np.float32(np.sqrt(budget / box_ms))
        if frame_index is not None:
            self._tracks[track_id] = _TrackState(frame_index, targets)
        (x0, y0), (h, w) = origin, back.shape
        roi = np.s_[y0:y0 + h, x0:x0 + w]
        # frame + round(pattern) in integers: the rounded sum of the float way, at a fraction of its cost
        delta = np.rint(back).astype(np.int16)[..., None]
        frame_rgb[roi] = np.clip(frame_rgb[roi] + delta, 0, 255).astype(np.uint8)


# --- detection ----------------------------------------------------------------------------------------

def observe(frame_rgb: np.ndarray) -> list[np.ndarray]:
    """Aligned luma squares of the faces in one frame (what detection combines)."""
    return [_canonical_luma(frame_rgb, matrix) for matrix, *_ in _faces(frame_rgb)]


def soft_values(lumas: np.ndarray, key: WatermarkKey, shift=(0.0, 0.0), scale: float = 1.0) -> np.ndarray:
    """(n, 32) soft bits in [-1, 1] of n aligned faces under `key`: +1 is a clean 0 bit, -1 a clean 1 bit."""
    step = _design().step
    projections = cell_features(lumas, shift, scale) @ PROJECTIONS.T
    return np.cos(2 * np.pi * (projections / step - key.dither))


def _best_alignment(lumas: np.ndarray, key: WatermarkKey) -> np.ndarray:
    """(n, 32) soft values under the alignment correction whose mean soft values are most decisive."""
    best, best_score = None, -1.0
    for scale in _SCALES:
        for dx in _SHIFTS:
            for dy in _SHIFTS:
                soft = soft_values(lumas, key, (dx, dy), scale)
                score = float(np.abs(soft.mean(0)).sum())
                if score > best_score:
                    best, best_score = soft, score
    return best


def decode_soft(total: np.ndarray, key: WatermarkKey) -> tuple[int | None, int]:
    """(payload, corrected bits) from 32 averaged soft values: the hard word's CRC must match, as is or
    after flipping one of its _WEAKEST least reliable bits (1 + _WEAKEST tries of a 1-in-65536 check)."""
    hard = np.asarray(total) < 0
    payload = decode_payload(hard, key)
    if payload is not None:
        return payload, 0
    for position in np.argsort(np.abs(total))[:_WEAKEST]:
        flipped = hard.copy()
        flipped[position] = ~flipped[position]
        payload = decode_payload(flipped, key)
        if payload is not None:
            return payload, 1
    return None, 0


def decide(lumas: list[np.ndarray] | np.ndarray, examined: int, key: WatermarkKey, min_votes: int = 1,
           groups: list[int] | None = None) -> Detection:
    """Combine aligned face squares (from `observe`) into one decision.

    `groups`: the window each observation came from (`detect_video`); the average of each window is decoded
    as well as the average of all, so a render that fills one window of a longer clip is still found.
    """
    if len(lumas) < max(1, min_votes):
        return Detection(False, None, len(lumas), examined, 0.0)
    soft = _best_alignment(np.asarray(lumas, np.float64), key)
    candidates = [np.ones(len(soft), bool)]
    if groups is not None and len(set(groups)) > 1:
        labels = np.asarray(groups)
        candidates += [labels == g for g in sorted(set(groups)) if (labels == g).sum() >= max(1, min_votes)]
    for chosen in candidates:
        subset = soft[chosen] if chosen.all() else _best_alignment(
            np.asarray(lumas, np.float64)[chosen], key)
        payload, _ = decode_soft(subset.mean(0), key)
        if payload is not None:
            agree = float(((subset < 0) == (encode_payload(payload, key) > 0.5)).mean())
            return Detection(True, payload, int(chosen.sum()), examined, agree)
    return Detection(False, None, len(lumas), examined, 0.0)


def detect_frames(frames: Iterable[np.ndarray], key: WatermarkKey, min_votes: int = 1) -> Detection:
    """Look for the mark in an iterable of RGB frames (every face in every frame is one observation)."""
    lumas: list[np.ndarray] = []
    examined = 0
    for frame in frames:
        examined += 1
        lumas += observe(frame)
    return decide(lumas, examined, key, min_votes)


def sample_windows(frame_count: int, window: int = DETECT_WINDOW, windows: int = DETECT_WINDOWS) -> list[int]:
    """First frames of the windows examined in a clip of `frame_count` frames: evenly spaced from the start
    to the end (the last window ends on the last frame); one window covers a clip that short."""
    if frame_count <= window * windows:
        return list(range(0, max(frame_count, 1), window))
    return sorted({int(round(v)) for v in np.linspace(0, frame_count - window, windows)})


def detect_video(path: str | Path, key: WatermarkKey, window: int = DETECT_WINDOW,
                 windows: int = DETECT_WINDOWS) -> Detection:
    """Look for the mark in `windows` runs of `window` frames spread over the whole video."""
    from facedouble.io.video import open_source

    source = open_source(path)
    count = source.info.frame_count
    if not count:  # no frame count in the container (e.g. MPEG-PS): count by decoding once
        count = sum(1 for _ in open_source(path))
    lumas: list[np.ndarray] = []
    groups: list[int] = []
    examined = 0
    for number, first in enumerate(sample_windows(count, window, windows)):
        for frame in open_source(path).frames(first):
            if frame.index >= first + window:
                break
            examined += 1
            faces = observe(frame.image)
            lumas += faces
            groups += [number] * len(faces)
    return decide(lumas, examined, key, groups=groups)


def detect_image(path: str | Path, key: WatermarkKey) -> Detection:
    """Look for the mark in a still image (one frame; the CRC still has to match)."""
    import cv2

    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise InputError(f"cannot read image {path}")
    return detect_frames([cv2.cvtColor(image, cv2.COLOR_BGR2RGB)], key)
