"""Training samples: DFL-style random warp, flips, colour augmentation and landmark masks.

Every batch is a pure function of (seed, rank, iteration), so background workers may run in any
order and a resumed run sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
from pathlib import Path

import cv2
import numpy as np

from facedouble.colour import get_colour_transfer
from facedouble.colour.jitter import colour_jitter
from facedouble.errors import FacedoubleError
from facedouble.face.warp import random_warp_maps
from facedouble.faceset import Faceset
from facedouble.faceset.labels import FaceLabels
from facedouble.mask.labels import label_mask

EYES = (slice(36, 42), slice(42, 48))
MOUTH = slice(48, 60)


@dataclasses.dataclass
class AugmentConfig:
    """Augmentation switches (DFL's SAEHD options)."""

    random_warp: bool = True
    random_flip: bool = True
    rotation: float = 10.0  # degrees, uniform ±
    scale: float = 0.05  # uniform ±
    shift: float = 0.05  # fraction of the side, uniform ±
    color_aug: float = 0.0  # 0..1 strength of HSV/contrast jitter (DFL's random_hsv_power)
    ct_mode: str = "none"  # a merge colour transfer (rct, lct, ...): src samples toward a random dst sample


def landmark_masks(landmarks: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(face hull mask, eyes+mouth mask), float32 (size,size) in [0,1], from 68 aligned landmarks."""
    pts = np.round(landmarks).astype(np.int32)
    face = np.zeros((size, size), np.float32)
    cv2.fillConvexPoly(face, cv2.convexHull(pts), 1.0)
    em = np.zeros((size, size), np.float32)
    for part in (*EYES, MOUTH):
        cv2.fillConvexPoly(em, cv2.convexHull(pts[part]), 1.0)
    r = max(1, size // 32)  # dilate so lids and lips' edges count, as DFL does
    em = cv2.dilate(em, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    return face, np.clip(cv2.GaussianBlur(em, (0, 0), r), 0, 1)


class FaceBank:
    """All faces of a faceset decoded once at the model resolution, with their masks.

    Memory: res² × 5 bytes per face (e.g. 10 000 faces at 128 px ≈ 0.8 GB).
    """

    def __init__(self, folder: str | Path, resolution: int, face_type: str, paths: list[Path] | None = None):
        fs = Faceset(folder)
        paths = fs.paths() if paths is None else paths
        if not paths:
            raise FacedoubleError(f"faceset {folder} has no faces")
        imgs, masks, ems = [], [], []
        for p in paths:
            rgb, meta = fs.load(p)
            if meta.face_type != face_type:
                raise FacedoubleError(f"{p.name}: face type {meta.face_type!r} but the model uses "
                                      f"{face_type!r}; re-extract with --face-type {face_type}")
            scale = resolution / meta.size
            if rgb.shape[0] != resolution:
                rgb = cv2.resize(rgb, (resolution, resolution),
                                 interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
            face, em = landmark_masks(meta.aligned_landmarks * scale, resolution)
            if meta.labels is not None:  # hand-drawn labels (facedouble mask label import) beat the hull
                face = label_mask(FaceLabels([q * scale for q in meta.labels.include],
                                             [q * scale for q in meta.labels.exclude]), resolution)
            elif meta.xseg is not None:  # the segmenter's mask (facedouble mask apply), as DFL trains on XSeg
                from facedouble.faceset.xseg import decode_mask

                face = decode_mask(meta.xseg)
                if face.shape[0] != resolution:
                    face = cv2.resize(face, (resolution, resolution), interpolation=cv2.INTER_LINEAR)
            imgs.append(rgb)
            masks.append((face * 255).astype(np.uint8))
            ems.append((em * 255).astype(np.uint8))
        self.images = np.stack(imgs)
        self.masks = np.stack(masks)
        self.eyes_mouth = np.stack(ems)
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.images)


def _affine(rng: np.random.Generator, size: int, aug: AugmentConfig) -> np.ndarray:
    angle = rng.uniform(-aug.rotation, aug.rotation)
    scale = 1 + rng.uniform(-aug.scale, aug.scale)
    tx, ty = rng.uniform(-aug.shift, aug.shift, 2) * size
    m = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
    m[:, 2] += (tx, ty)
    return m


def _place(x: np.ndarray, m: np.ndarray, flip: bool, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    y = cv2.warpAffine(x, m, (x.shape[1], x.shape[0]), flags=cv2.INTER_LINEAR, borderMode=border)
    return y[:, ::-1] if flip else y


def make_side(bank: FaceBank, rng: np.random.Generator, n: int, aug: AugmentConfig, shard: np.ndarray,
              ref: FaceBank | None = None) -> dict[str, np.ndarray]:
    """n augmented samples: warped input, target, mask, eyes/mouth mask — float32 NHWC in [0,1]."""
    size = bank.images.shape[1]
    out = {k: np.empty((n, size, size, c), np.float32)
           for k, c in (("warped", 3), ("target", 3), ("mask", 1), ("eyes_mouth", 1))}
    for i in range(n):
        j = int(shard[rng.integers(len(shard))])
        img = bank.images[j].astype(np.float32) / 255
        mask = bank.masks[j].astype(np.float32) / 255
        em = bank.eyes_mouth[j].astype(np.float32) / 255
        if ref is not None:
            k = int(rng.integers(len(ref)))
            both = mask[..., 0] * (ref.masks[k][..., 0] / 255) if mask.ndim == 3 else mask * (ref.masks[k] / 255)
            img = get_colour_transfer(aug.ct_mode)(img, ref.images[k].astype(np.float32) / 255, both)
        if aug.color_aug > 0:
            img = np.clip(colour_jitter(rng, img, aug.color_aug, hue_deg=18, saturation=0.5, value=0.3, contrast=0.3),
                              0, 1)
        m = _affine(rng, size, aug)
        if aug.random_warp:
            mapx, mapy = random_warp_maps(rng, size)
            warped = cv2.remap(img, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        else:
            warped = img
        flip = aug.random_flip and rng.random() < 0.5

        out["warped"][i] = _place(warped, m, flip)
        out["target"][i] = _place(img, m, flip)
        out["mask"][i, ..., 0] = _place(mask, m, flip, cv2.BORDER_CONSTANT)
        out["eyes_mouth"][i, ..., 0] = _place(em, m, flip, cv2.BORDER_CONSTANT)
    return out


def dst_split(batch_size: int, dst_sets: int) -> list[int]:
    """How the dst half of a batch is shared among `dst_sets` dst facesets: as evenly as possible, the first
    sets one sample more (8 over 3 sets: 3, 3, 2). The batch keeps its size, so an iteration costs the same
    whatever the number of --dst; every set needs at least one sample per iteration."""
    if dst_sets < 1:
        raise FacedoubleError(f"need at least one dst faceset, got {dst_sets}")
    if batch_size < dst_sets:
        raise FacedoubleError(f"batch size {batch_size} is smaller than the number of --dst facesets ({dst_sets}): "
                              "each needs a sample per iteration; raise --batch-size")
    return [batch_size // dst_sets + (i < batch_size % dst_sets) for i in range(dst_sets)]


class BatchSource:
    """Deterministic batches for (src, dst), prefetched by background threads.

    `dst` is one FaceBank or a list of them (several dst identities, one decoder each): the batch's dst rows
    then come from each in turn (`split` rows each, see `dst_split`) under the usual `dst_*` keys, so the
    model decodes each run with its set's decoder. One dst bank gives exactly the batches it always gave.

    OpenCV and NumPy release the GIL in the heavy calls, so threads overlap with the training step
    without copying the face banks into worker processes.
    """

    def __init__(self, src: FaceBank, dst: FaceBank | list[FaceBank], batch_size: int, aug: AugmentConfig,
                 seed: int, rank: int = 0, world: int = 1, workers: int = 2, prefetch: int = 4):
        self.dsts = list(dst) if isinstance(dst, (list, tuple)) else [dst]
        self.src, self.dst, self.batch_size, self.aug = src, self.dsts[0], batch_size, aug
        self.split = dst_split(batch_size, len(self.dsts))
        self.seed, self.rank = seed, rank
        # Each DDP rank samples its own shard of each faceset (all of it if too small to split).
        self.shards = [np.arange(rank, len(b), world) if len(b) >= world else np.arange(len(b))
                       for b in (src, *self.dsts)]
        self.pool = cf.ThreadPoolExecutor(workers) if workers > 0 else None
        self.prefetch = prefetch
        self.pending: dict[int, cf.Future] = {}

    def make(self, iteration: int, first_dst_only: bool = False) -> dict[str, np.ndarray]:
        """The batch of `iteration` (pure function of seed, rank, iteration).

        `first_dst_only`: all dst rows from the first dst set (the preview, which shows dst->dst through the
        first set's decoder)."""
        rng = np.random.default_rng([self.seed, self.rank, iteration, False])
        ref = self.dst if self.aug.ct_mode != "none" else None
        out = {f"src_{k}": v for k, v in make_side(self.src, rng, self.batch_size, self.aug, self.shards[0],
                                                    ref).items()}
        split = [self.batch_size] if first_dst_only else self.split
        parts = []
        for i, n in enumerate(split):
            # set 0 draws from the stream a single-dst model always used; set i from its own
            key = [self.seed, self.rank, iteration, True] + ([i] if i else [])
            parts.append(make_side(self.dsts[i], np.random.default_rng(key), n, self.aug, self.shards[1 + i]))
        for k in parts[0]:
            out[f"dst_{k}"] = parts[0][k] if len(parts) == 1 else np.concatenate([p[k] for p in parts])
        return out

    def get(self, iteration: int) -> dict[str, np.ndarray]:
        """Batch `iteration`, and start preparing the next few in the background."""
        if self.pool is None:
            return self.make(iteration)
        for it in range(iteration, iteration + self.prefetch + 1):
            if it not in self.pending:
                self.pending[it] = self.pool.submit(self.make, it)
        for it in [k for k in self.pending if k < iteration]:
            self.pending.pop(it).cancel()
        return self.pending.pop(iteration).result()

    def close(self) -> None:
        """Stop the workers."""
        if self.pool is not None:
            for f in self.pending.values():
                f.cancel()
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
