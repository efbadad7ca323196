"""Invisible watermark in the face region: RivaGAN (bundled with invisible-watermark 0.2.0) on onnxruntime.

Payload layout (32 bits, RivaGAN's capacity): a 16-bit payload id followed by a CRC-16/CCITT of the id,
the whole word XORed with a fixed mask. The CRC is the error detector: a decoded word whose CRC does not
match is never reported as a mark. 16 check bits (not 8) because the decoder is biased by image content:
frames of an unmarked clip decode to a stable but arbitrary word, and with 8 check bits one unmarked clip
in 256 would pass. The mask keeps trivial words (all zeros / all ones) from being valid codes.

Why the face region is resampled and the mark is strong: the face in 360x288 footage is ~150 px, and the
mark must survive H.264 CRF 28 plus a 50% downscale. The square region around the face (box + 25% padding)
is resampled to WORK_SIZE = 128 px, RivaGAN runs there, and only its residual (marked - input) is mapped
back to frame pixels and added, scaled by `strength`. 128 px makes the pattern coarse in frame pixels, so it
survives the downscale; RivaGAN's residual lives mostly in chroma (luma-only embedding does not survive).
Strength is 3x RivaGAN's own residual for faces >= 256 px and rises to 5x for faces <= 160 px, where
measurements (bench/trust.py) showed the weaker mark losing bits after CRF 28 + 50% resize.
Known limitation, still open: at these strengths the mark is VISIBLE as a pink/green chroma mottle over the
face. Face-box PSNR on GRID (faces ~110 px, gain 5) is ~29 dB; gain 1.5 gives ~39 dB but then CRF 28 + 50%
resize leaves ~0.54 per-frame bit accuracy and the clip is not found. Measured on pwij3p (2 s, CRF 28 +
50%), none of these reached >= 40 dB AND survival: the residual's luma only (the decoder ignores luma:
~0.5 bit accuracy even at gain 5), its chroma only (gain 3: 0.68), perceptual masking by local contrast
(costs PSNR: energy moves to edges), low-passing the residual (PSNR and robustness fall together), a
96 px work square (gain 3: 0.73, 33 dB), and a spread-spectrum luma mark with a correlation decoder
(40 dB: ~0.72 per-frame accuracy after temporal centring, PCA word ~80% bits right: not decodable).
RivaGAN's robustness here tracks the residual's energy; no shaping found moves it into what survives.
On GRID upscaled to 720p (faces ~400 px), 3x survived CRF 28 on both clips tried and CRF 28 + 50% on one
of two. Robustness vs visibility is a product decision; `strength` is a constructor argument.

Temporal layout: RivaGAN costs ~0.1 s per face at 128 px on one CPU core, so the encoder runs only on
"key" frames (`frames_to_mark`: KEYS_PER_SECOND per second). Its residual, expressed in face-region
coordinates, is carried to every following frame of that face until the next key frame. Marking isolated
frames did not work: H.264 treats a one-frame pattern as noise and drops it (per-frame bit accuracy fell to
~0.6 after CRF 28), while a pattern that moves with the face is kept by motion prediction (~0.97).

Content bias and polarity alternation: on an unmarked or weakly marked face the decoder's outputs are
dominated by a bias that depends on the image and is nearly constant over a shot, so after CRF 28 + 50%
resize the plain vote kept the same 1-4 bits wrong on every frame (voting cannot fix a bias). So key
blocks alternate between the payload word and its complement; detection removes the temporal mean of the
decoder outputs (the bias) and takes their first principal component, which is +-payload (`_candidates`).

Detection decodes every frame with a face (up to DETECT_MAX_FRAMES), forms those candidate words and
checks the CRC, allowing up to two corrected bits; enough frames must agree on their own (see `_vote`).
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np

from facedouble.errors import InputError

WORK_SIZE = 128
PAD = 0.25
STRENGTH_LARGE_FACE = 3.0  # face box side >= 256 px
STRENGTH_SMALL_FACE = 5.0  # face box side <= 160 px
KEYS_PER_SECOND = 2.0
ID_BITS = 16
MAX_PAYLOAD_ID = (1 << ID_BITS) - 1
_MASK = 0x5A3C_96E1  # fixed whitening mask (arbitrary constant, part of the format)
_LOGIT_CLIP = 4.0  # one very confident frame must not outvote several others
_MEAN_AGREEMENT_2FLIP = 0.8  # mean per-frame bit agreement a 2-bit-corrected payload needs
_MAX_BIT_ERRORS = 4  # a frame "votes" for a payload if its own bits are this close to it
DETECT_MAX_FRAMES = 250  # verify looks at the first 10 s at 25 fps: enough for any excerpt we must find


@dataclasses.dataclass
class Detection:
    """What `detect_video` / `detect_image` found."""

    found: bool
    payload: int | None
    frames_voted: int
    frames_examined: int
    confidence: float  # mean fraction of the voting frames' bits that agree with the payload (0 if none)

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


def encode_payload(payload_id: int) -> np.ndarray:
    """32 bits (float32 0/1, MSB first) that carry `payload_id` and its check bits."""
    if not 0 <= payload_id <= MAX_PAYLOAD_ID:
        raise InputError(f"watermark payload id must be 0..{MAX_PAYLOAD_ID}, got {payload_id}")
    word = ((payload_id << 16) | crc16(payload_id)) ^ _MASK
    return np.array([(word >> (31 - i)) & 1 for i in range(32)], dtype=np.float32)


def decode_payload(bits: np.ndarray) -> int | None:
    """Payload id from 32 hard bits, or None if the check bits do not match."""
    word = 0
    for bit in np.asarray(bits).astype(int).ravel():
        word = (word << 1) | int(bit)
    word ^= _MASK
    payload_id, check = word >> 16, word & 0xFFFF
    return payload_id if crc16(payload_id) == check else None


def frames_to_mark(n_frames: int, fps: float) -> set[int]:
    """Key frames (KEYS_PER_SECOND per second) where RivaGAN runs; frames between carry their residual."""
    step = max(1, round((fps or 25.0) / KEYS_PER_SECOND))
    return set(range(0, n_frames, step))


@functools.cache
def _session(name: str):
    import importlib.util

    import onnxruntime as ort

    # locate the bundled model without importing imwatermark: its __init__ imports torch
    spec = importlib.util.find_spec("imwatermark")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("invisible-watermark 0.2.0 is not installed (it ships the RivaGAN model)")
    model = Path(next(iter(spec.submodule_search_locations))) / f"rivagan_{name}.onnx"
    options = ort.SessionOptions()
    # one thread: the machines this runs on are shared, and merge parallelises across frames itself
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


@functools.cache
def _detector():
    from facedouble.extract.detectors import get_detector

    return get_detector("retinaface")


def _face_boxes(frame_rgb: np.ndarray) -> list[tuple[float, float, float, float]]:
    """Face boxes (x0, y0, x1, y1) from the extract stage's detector, largest first."""
    boxes = [tuple(float(v) for v in d.box) for d in _detector().detect(frame_rgb)]
    return sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _region_matrix(box) -> np.ndarray:
    """2x3 affine from frame pixels to the WORK_SIZE square around `box`."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * (1 + 2 * PAD)
    scale = WORK_SIZE / side
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return np.array([[scale, 0, WORK_SIZE / 2 - cx * scale], [0, scale, WORK_SIZE / 2 - cy * scale]])


def _crop(frame: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    import cv2

    upscale = matrix[0, 0] >= 1.0
    return cv2.warpAffine(frame, matrix, (WORK_SIZE, WORK_SIZE),
                          flags=cv2.INTER_CUBIC if upscale else cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)


def _to_tensor(image: np.ndarray) -> np.ndarray:
    # RivaGAN takes (batch, channel, time=1, H, W) in [-1, 1]
    return (image.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None, :, None]


def _canonical_box(frame_rgb: np.ndarray, box) -> tuple[float, float, float, float]:
    """The detector's box for the face at `box`: verify finds the face with the same detector, so
    marking the region it would see keeps embed and decode aligned whatever box merge passes in."""
    try:
        candidates = _face_boxes(frame_rgb)
    except Exception:  # noqa: BLE001 - a detector failure must not stop marking; use the given box
        return tuple(map(float, box))
    best = max(candidates, key=lambda c: _iou(c, box), default=None)
    if best is not None and _iou(best, box) > 0.3:
        return best
    return tuple(map(float, box))


def strength_for(box) -> float:
    """Residual gain for a face box: stronger on small faces, which lose more to compression and resizing."""
    side = max(box[2] - box[0], box[3] - box[1])
    t = min(1.0, max(0.0, (side - 160.0) / (256.0 - 160.0)))
    return STRENGTH_SMALL_FACE + t * (STRENGTH_LARGE_FACE - STRENGTH_SMALL_FACE)


@dataclasses.dataclass
class _TrackState:
    residual: np.ndarray  # (WORK_SIZE, WORK_SIZE, 3) float32, already scaled by strength
    box_offset: np.ndarray  # canonical box minus given box, in units of the given box's size
    block: int | None  # frame_index // step the residual was made for (None: a still)


class Watermarker:
    """Embeds one payload id into the face region (the API merge calls).

    Call `embed` on every frame that shows a face, in frame order, passing `frame_index`. RivaGAN runs only
    on the frames in `frames_to_mark(...)` (and on a face's first frame); other frames reuse that residual,
    moved with the face box, which is what lets the mark survive H.264.
    """

    def __init__(self, payload_id: int, fps: float = 25.0, strength: float | None = None):
        self.payload_id = payload_id
        self.bits = encode_payload(payload_id)
        self.fps = fps
        self.strength = strength  # None: chosen per face size by strength_for()
        self._step = max(1, round((fps or 25.0) / KEYS_PER_SECOND))
        self._tracks: dict[int, _TrackState] = {}

    @staticmethod
    def frames_to_mark(n_frames: int, fps: float) -> set[int]:
        """Key frames where the RivaGAN encoder runs (every other frame with a face carries its residual)."""
        return frames_to_mark(n_frames, fps)

    def _fresh_residual(self, frame_rgb: np.ndarray, box, block: int | None) -> _TrackState:
        canonical = _canonical_box(frame_rgb, box)
        crop = _crop(frame_rgb, _region_matrix(canonical))
        # odd blocks carry the complement: see the module docstring (cancels the decoder's content bias)
        bits = self.bits if block is None or block % 2 == 0 else 1.0 - self.bits
        (out,) = _session("encoder").run(None, {"frame": _to_tensor(crop), "data": bits[None]})
        marked = (np.clip(out[0, :, 0].transpose(1, 2, 0), -1.0, 1.0) + 1.0) * 127.5
        gain = self.strength if self.strength is not None else strength_for(canonical)
        size = np.array([box[2] - box[0], box[3] - box[1]] * 2, dtype=np.float64)
        offset = (np.array(canonical, dtype=np.float64) - np.array(box, dtype=np.float64)) / size
        return _TrackState((marked - crop.astype(np.float32)) * gain, offset, block)

    def embed(self, frame_rgb: np.ndarray, face_box_xyxy, frame_index: int | None = None,
              track_id: int = 0) -> np.ndarray:
        """Return a copy of the RGB uint8 frame with the payload embedded around the face box.

        `frame_index` None means "treat as a key frame" (stills, or a caller without indices).
        """
        import cv2

        if frame_rgb.dtype != np.uint8 or frame_rgb.ndim != 3:
            raise InputError("watermark embed expects an RGB uint8 frame")
        box = tuple(float(v) for v in face_box_xyxy)
        state = self._tracks.get(track_id)
        block = None if frame_index is None else frame_index // self._step
        if state is None or block is None or state.block != block:
            state = self._tracks[track_id] = self._fresh_residual(frame_rgb, box, block)
        size = np.array([box[2] - box[0], box[3] - box[1]] * 2)
        region = tuple(np.array(box) + state.box_offset * size)
        matrix = _region_matrix(region)
        h, w = frame_rgb.shape[:2]
        back = cv2.warpAffine(state.residual, cv2.invertAffineTransform(matrix), (w, h),
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return np.clip(frame_rgb.astype(np.float32) + back, 0, 255).round().astype(np.uint8)


def decode_logits(frame_rgb: np.ndarray, face_box_xyxy) -> np.ndarray:
    """RivaGAN's 32 raw outputs for the face region (positive = bit 1)."""
    crop = _crop(frame_rgb, _region_matrix(face_box_xyxy))
    (out,) = _session("decoder").run(None, {"frame": _to_tensor(crop)})
    return out[0].astype(np.float64)


def _hamming_ok(logits: np.ndarray, bits: np.ndarray) -> tuple[bool, float]:
    agree = (logits > 0) == (bits > 0.5)
    return int((~agree).sum()) <= _MAX_BIT_ERRORS, float(agree.mean())


def _decode_soft(total: np.ndarray) -> tuple[int | None, int]:
    """(payload, corrected bits) from a soft word: exact CRC match, else one flip among the 4 least
    reliable positions, else two flips among the 6 least reliable. Each tried word is one chance in 65536
    for an unmarked input to pass, so the 1 + 4 + 15 = 20 trials bound that at 20/65536 per candidate
    word before the frame vote (2-flip corrections must also pass a stricter agreement test, see `_vote`)."""
    hard = total > 0
    payload = decode_payload(hard)
    if payload is not None:
        return payload, 0
    weakest = [int(p) for p in np.argsort(np.abs(total))[:6]]
    trials = [(p,) for p in weakest[:4]] + [(p, q) for i, p in enumerate(weakest) for q in weakest[i + 1:]]
    for flips in trials:
        flipped = hard.copy()
        flipped[list(flips)] = ~flipped[list(flips)]
        payload = decode_payload(flipped)
        if payload is not None:
            return payload, len(flips)
    return None, 0


def _candidates(logits: np.ndarray) -> list[np.ndarray]:
    """Soft 32-bit words that may carry the payload.

    Video: the decoder's output is content bias (nearly constant over a shot) plus +-w, the sign
    alternating every key block. Removing the temporal mean removes the bias; the first principal
    component of what is left is +-w. Both signs are tried: the CRC accepts at most one of them.
    The plain sum is kept for stills and for excerpts shorter than two blocks.
    """
    total = logits.sum(axis=0)
    words = [total]
    if len(logits) >= 4:
        centred = logits - logits.mean(axis=0)
        _, singular, vt = np.linalg.svd(centred, full_matrices=False)
        if singular[0] > 0:
            words += [vt[0] * singular[0], -vt[0] * singular[0]]
    return words


def _agreement(logits: np.ndarray, bits: np.ndarray, centred: np.ndarray | None) -> np.ndarray:
    """Per observation: share of bits agreeing with the payload (on alternate blocks: its complement)."""
    target = bits > 0.5
    plain = ((logits > 0) == target).mean(axis=1)
    if centred is None:
        return plain
    alt = ((centred > 0) == target).mean(axis=1)
    return np.maximum(plain, np.maximum(alt, 1.0 - alt))


def _vote(observations: list[tuple[int, np.ndarray]], min_votes: int, examined: int) -> Detection:
    """Combine per-frame decoder outputs into one decision.

    A candidate word (see `_candidates`) counts only if its CRC matches (after at most one corrected bit)
    AND at least `min_votes` observations agree with it on >= 32 - _MAX_BIT_ERRORS bits on their own.
    """
    if not observations:
        return Detection(False, None, 0, examined, 0.0)
    logits = np.clip(np.array([lg for _, lg in observations]), -_LOGIT_CLIP, _LOGIT_CLIP)
    centred = logits - logits.mean(axis=0) if len(logits) >= 4 else None
    best = Detection(False, None, 0, examined, 0.0)
    for word in _candidates(logits):
        payload, corrected = _decode_soft(word)
        if payload is None:
            continue
        agree = _agreement(logits, encode_payload(payload), centred)
        votes = agree[agree >= 1.0 - _MAX_BIT_ERRORS / 32]
        # a 2-bit correction is only believed when the frames, on average, agree with the result on
        # >= 80% of bits (unmarked frames agree with an arbitrary code word on ~50-60%)
        found = len(votes) >= min_votes and (corrected < 2 or float(agree.mean()) >= _MEAN_AGREEMENT_2FLIP)
        if (found, len(votes)) > (best.found, best.frames_voted) or best.payload is None:
            best = Detection(found, payload, len(votes), examined,
                             float(votes.mean()) if len(votes) else 0.0)
    if not best.found:
        return Detection(False, None, best.frames_voted, examined, best.confidence)
    return best


def detect_frames(frames, min_votes: int = 2) -> Detection:
    """Vote over an iterable of RGB frames (every face in every frame is one observation)."""
    observations: list[tuple[int, np.ndarray]] = []
    examined = 0
    for index, frame in enumerate(frames):
        examined += 1
        for box in _face_boxes(frame)[:4]:
            observations.append((index, decode_logits(frame, box)))
    return _vote(observations, min_votes, examined)


def detect_video(path: str | Path, max_frames: int = DETECT_MAX_FRAMES) -> Detection:
    """Look for the mark in the first `max_frames` frames of a video."""
    from facedouble.io.video import open_source

    source = open_source(path)

    def frames():
        for frame in source:
            if frame.index >= max_frames:
                return
            yield frame.image

    return detect_frames(frames())


def detect_image(path: str | Path) -> Detection:
    """Look for the mark in a still image (one frame: one vote suffices, the CRC still has to match)."""
    import cv2

    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise InputError(f"cannot read image {path}")
    return detect_frames([cv2.cvtColor(image, cv2.COLOR_BGR2RGB)], min_votes=1)
