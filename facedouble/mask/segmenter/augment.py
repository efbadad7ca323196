"""Training samples for the segmenter: labelled faces, strongly augmented.

Each sample: a random affine (rotation, scale, shift) and DFL's smooth random warp applied to the image
and its label mask alike, a random flip, colour jitter (hue, saturation, brightness, contrast, grey), a
strong tone change (gamma, warm or cool light: skin darker than the footage's), blur (Gaussian or motion)
and noise, a synthetic beard or shadow that stays face; and with some probability an occluder pasted on: the excluded
region (a hand, glasses) cut from another labelled face, moved, turned and scaled, which is then
excluded from this face's mask too. A segmenter that also takes the face's outline (model.SegmenterConfig.prior)
gets it warped and flipped with the image; the outline stays where the landmarks put it when an occluder is
pasted on (the landmarks of a covered face are the face's, not the hand's), and now and then it is grown, shrunk
or shifted a little (OUTLINE_JITTER) so the network learns to check it against the pixels rather than copy
it. Every batch is a pure function of (seed, iteration), so resumed
training sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from facedouble.colour.jitter import colour_jitter
from facedouble.face.warp import random_warp_maps


@dataclasses.dataclass
class SegAugment:
    """Augmentation strengths."""

    rotation: float = 15.0  # degrees, uniform ±
    scale: tuple[float, float] = (0.8, 1.2)  # covers neighbouring face types (mid, whole) too
    shift: float = 0.08  # fraction of the side
    warp: float = 0.7  # probability of the random grid warp
    flip: float = 0.5
    colour: float = 1.0  # strength of HSV / contrast jitter
    # Off by default (the shipped model's recipe); measured in short runs without a clear gain (README: Masks):
    tone: float = 0.0  # probability of a strong tone change: gamma and per-channel gains (dark skin, warm light)
    shade: float = 0.0  # probability of a synthetic beard, moustache or shadow that stays face
    grey: float = 0.05  # probability of a grey-scale sample
    blur: float = 0.3  # probability of a Gaussian or motion blur
    noise: float = 0.3  # probability of sensor-like noise
    occluder: float = 0.5  # probability of pasting a cut-out occluder (a labelled hand, glasses)
    patch: float = 0.25  # probability of pasting a random-shaped patch of another face image (any occluder)
    outline_jitter: float = 0.5  # probability of growing/shrinking/shifting the outline input (outline models)
    outline_jitter_size: float = 0.03  # ... by up to this fraction of the side


@dataclasses.dataclass
class Occluder:
    """Pixels of an occluder cut from a labelled face: RGB and its alpha, cropped to its box."""

    rgb: np.ndarray  # (h, w, 3) uint8
    alpha: np.ndarray  # (h, w) float32 in [0, 1]


def occluders_from(images: np.ndarray, include: np.ndarray, visible: np.ndarray,
                   exclude: np.ndarray) -> list[Occluder]:
    """Cut-outs of every labelled face's excluded regions (hands, glasses) that are big enough to matter.

    `exclude` is the union of the exclude polygons (their pixels are the occluder, also where they reach
    past the face outline); `include`/`visible` are only used to skip faces without an occluder.
    """
    out = []
    size = images.shape[1]
    for img, inc, vis, exc in zip(images, include, visible, exclude, strict=True):
        if exc.sum() < 0.01 * size * size or (inc > 0).sum() - (vis > 0).sum() < 0.005 * size * size:
            continue
        ys, xs = np.nonzero(exc)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        alpha = cv2.GaussianBlur(exc[y0:y1, x0:x1].astype(np.float32), (0, 0), 1.0)
        out.append(Occluder(img[y0:y1, x0:x1].copy(), alpha))
    return out


def _affine(rng: np.random.Generator, size: int, aug: SegAugment) -> np.ndarray:
    m = cv2.getRotationMatrix2D((size / 2, size / 2), rng.uniform(-aug.rotation, aug.rotation),
                                rng.uniform(*aug.scale))
    m[:, 2] += rng.uniform(-aug.shift, aug.shift, 2) * size
    return m


def _paste(rng: np.random.Generator, img: np.ndarray, mask: np.ndarray, occ: Occluder) -> None:
    """Paste `occ` (randomly turned, scaled, flipped) at a random spot over the face; in place."""
    size = img.shape[0]
    h, w = occ.alpha.shape
    scale = rng.uniform(0.6, 1.3)
    angle = rng.uniform(-180, 180)
    centre = rng.uniform(0.2, 0.8, 2) * size  # anywhere over the face: mouth, eyes, forehead
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    m[:, 2] += centre - np.array([w / 2, h / 2])
    rgb = occ.rgb[:, ::-1] if rng.random() < 0.5 else occ.rgb
    alpha = occ.alpha[:, ::-1] if rgb is not occ.rgb else occ.alpha
    a = cv2.warpAffine(np.ascontiguousarray(alpha), m, (size, size), flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT)
    p = cv2.warpAffine(np.ascontiguousarray(rgb), m, (size, size), flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT).astype(np.float32) / 255.0
    img *= 1 - a[..., None]
    img += p * a[..., None]
    mask *= 1 - np.clip(a * 1.5, 0, 1)  # what the occluder half-covers is no longer visible face


def _colour(rng: np.random.Generator, img: np.ndarray, aug: SegAugment) -> np.ndarray:
    out = colour_jitter(rng, img, aug.colour, hue_deg=20, saturation=0.6, value=0.4, contrast=0.4)
    if rng.random() < aug.grey:
        out = np.repeat(out.mean(2, keepdims=True), 3, 2)
    return np.clip(out, 0, 1).astype(np.float32)


def _tone(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Gamma and per-channel gains: darker or lighter skin, tungsten-orange or cool light (the footage has little)."""
    out = np.power(np.clip(img, 0, 1), rng.uniform(0.7, 2.8))
    if rng.random() < 0.7:  # warm
        gains = np.array([rng.uniform(0.95, 1.25), rng.uniform(0.8, 1.05), rng.uniform(0.5, 0.95)], np.float32)
    else:  # cool
        gains = np.array([rng.uniform(0.7, 1.0), rng.uniform(0.9, 1.05), rng.uniform(1.0, 1.3)], np.float32)
    return (out * gains).astype(np.float32)


MOUTH = (0.5, 0.675)  # mouth centre of a full-type aligned face, fraction of the side (face.align's template)


def _shade(rng: np.random.Generator, img: np.ndarray, msk: np.ndarray) -> None:
    """Darken a soft-edged, hair-textured region of the face that the label keeps: a beard, a moustache, a shadow.

    Facial hair and shadows are face, not occluders: without this the segmenter, which sees pasted patches of
    foreign texture marked as occluders and no bearded face in the footage, cuts a moustache or a beard out of
    the face. Mostly beard-shaped (moustache, goatee or both, around the mouth, reaching the chin), else a
    random blob anywhere on the face. In place."""
    size = img.shape[0]
    alpha = np.zeros((size, size), np.float32)
    if rng.random() < 0.7:
        cx, cy = (np.array(MOUTH) + rng.uniform(-0.03, 0.03, 2)) * size
        kind = rng.integers(3)  # 0 moustache, 1 goatee / beard, 2 both
        if kind != 1:
            axes = (int(rng.uniform(0.1, 0.2) * size), int(rng.uniform(0.02, 0.05) * size))
            cv2.ellipse(alpha, (int(cx), int(cy - rng.uniform(0.04, 0.07) * size)), axes, 0, 0, 360, 1.0, -1)
        if kind != 0:
            axes = (int(rng.uniform(0.08, 0.3) * size), int(rng.uniform(0.1, 0.25) * size))
            cv2.ellipse(alpha, (int(cx), int(cy + rng.uniform(0.03, 0.15) * size)), axes, 0, 0, 360, 1.0, -1)
            alpha *= msk > 0.5  # a beard ends where the face outline does (the label's chin)
        if rng.random() < (0.5 if kind == 0 else 0.8):  # the lips mostly stay bare
            axes = (int(rng.uniform(0.08, 0.13) * size), int(rng.uniform(0.02, 0.04) * size))
            cv2.ellipse(alpha, (int(cx), int(cy)), axes, 0, 0, 360, 0.0, -1)
    else:
        w, h = rng.uniform(0.15, 0.5) * size, rng.uniform(0.08, 0.35) * size
        centre = rng.uniform(0.25, 0.75, 2) * size
        pts = (rng.uniform(-0.5, 0.5, (int(rng.integers(5, 10)), 2)) * (w, h) + centre).astype(np.float32)
        cv2.fillConvexPoly(alpha, np.round(cv2.convexHull(pts)).astype(np.int32), 1.0)
    alpha = cv2.GaussianBlur(alpha, (0, 0), rng.uniform(1.0, 4.0) * size / 256)
    # hair: noise streaked along a random direction, so the region is textured, not a flat shadow
    streak = rng.uniform(1.5, 4.0) * size / 256
    hair = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0),
                            sigmaX=0.6, sigmaY=streak) if rng.random() < 0.5 else \
        cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), sigmaX=streak, sigmaY=0.6)
    hair /= max(float(hair.std()), 1e-6)
    if rng.random() < 0.6:  # hair of its own colour (black, brown, grey), not darker skin
        base = rng.uniform(0.03, 0.3) * np.array([1.0, rng.uniform(0.75, 1.0), rng.uniform(0.55, 1.0)], np.float32)
        hair_rgb = base * np.clip(1 + rng.uniform(0.2, 0.6) * hair, 0.2, 3.0)[..., None]
        a = alpha[..., None] * rng.uniform(0.7, 1.0)
        img *= 1 - a
        img += a * hair_rgb
    else:  # a shadow or stubble: the skin darkened
        dark = np.clip(rng.uniform(0.1, 0.5) * (1 + rng.uniform(0.0, 0.5) * hair), 0.02, 1.0)
        img *= (1 - alpha * (1 - dark))[..., None]


def _degrade(rng: np.random.Generator, img: np.ndarray, aug: SegAugment) -> np.ndarray:
    size = img.shape[0]
    if rng.random() < aug.blur:
        if rng.random() < 0.6:
            img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 2.5) * size / 256)
        else:  # motion blur: a hand waving past, a head turning
            k = int(rng.integers(3, max(4, size // 20)))
            kernel = np.zeros((k, k), np.float32)
            kernel[k // 2] = 1.0 / k
            rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), rng.uniform(0, 180), 1.0)
            kernel = cv2.warpAffine(kernel, rot, (k, k))
            img = cv2.filter2D(img, -1, kernel / max(kernel.sum(), 1e-6))
    if rng.random() < aug.noise:
        img = img + rng.normal(0, rng.uniform(0.005, 0.04), img.shape).astype(np.float32)
    return np.clip(img, 0, 1)


def random_patch(rng: np.random.Generator, image: np.ndarray) -> Occluder:
    """A random convex polygon of `image`'s pixels: an occluder of unknown kind (microphone, hair, a cup)."""
    size = image.shape[0]
    side = int(rng.integers(size // 8, size // 2))
    y, x = rng.integers(0, size - side, 2)
    pts = rng.uniform(0, side, (int(rng.integers(4, 9)), 2)).astype(np.float32)
    alpha = np.zeros((side, side), np.float32)
    cv2.fillConvexPoly(alpha, np.round(cv2.convexHull(pts)).astype(np.int32), 1.0)
    return Occluder(image[y:y + side, x:x + side].copy(), cv2.GaussianBlur(alpha, (0, 0), 1.0))


def _jitter_outline(rng: np.random.Generator, outline: np.ndarray, aug: SegAugment) -> np.ndarray:
    """The outline input grown or shrunk and shifted by up to `outline_jitter_size` of the side: landmarks
    are off by that much on a blurred, turned or half-covered face."""
    size = outline.shape[0]
    reach = aug.outline_jitter_size * size
    radius = int(round(rng.uniform(0, reach)))
    if radius > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        outline = cv2.dilate(outline, kernel) if rng.random() < 0.5 else cv2.erode(outline, kernel)
    shift = np.float32([[1, 0, rng.uniform(-reach, reach)], [0, 1, rng.uniform(-reach, reach)]])
    return cv2.warpAffine(outline, shift, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def make_sample(rng: np.random.Generator, image: np.ndarray, mask: np.ndarray, occluders: list[Occluder],
                aug: SegAugment, other: np.ndarray | None = None, outline: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One augmented (image float32 HWC [0,1], mask float32 HW [0,1], outline float32 HW [0,1] or None) from a
    uint8 face, its mask and (for outline models) its uint8 filled outline.

    `other`: another face image of the set, the source of a random patch occluder. Without an outline the
    random draws are the ones the RGB recipe always made, so its batches do not change.
    """
    size = image.shape[0]
    img = image.astype(np.float32) / 255.0
    msk = mask.astype(np.float32) / 255.0
    out = None if outline is None else outline.astype(np.float32) / 255.0
    if aug.shade > 0 and rng.random() < aug.shade:  # no draw when off: the older recipe's batches stay
        _shade(rng, img, msk)
    if occluders and rng.random() < aug.occluder:
        _paste(rng, img, msk, occluders[int(rng.integers(len(occluders)))])
    if other is not None and rng.random() < aug.patch:
        _paste(rng, img, msk, random_patch(rng, other))
    m = _affine(rng, size, aug)
    if rng.random() < aug.warp:
        mapx, mapy = random_warp_maps(rng, size)
        img = cv2.remap(img, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        msk = cv2.remap(msk, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        if out is not None:
            out = cv2.remap(out, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    img = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    msk = cv2.warpAffine(msk, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    if out is not None:
        out = cv2.warpAffine(out, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    if rng.random() < aug.flip:
        img, msk = img[:, ::-1], msk[:, ::-1]
        out = None if out is None else out[:, ::-1]
    img = np.ascontiguousarray(img)
    if aug.tone > 0 and rng.random() < aug.tone:
        img = _tone(rng, img)
    img = _degrade(rng, _colour(rng, img, aug), aug)
    if out is not None:
        out = np.ascontiguousarray(out)
        if aug.outline_jitter > 0 and rng.random() < aug.outline_jitter:
            out = _jitter_outline(rng, out, aug)
    return img, np.ascontiguousarray(msk), out


def make_batch(images: np.ndarray, masks: np.ndarray, occluders: list[Occluder], aug: SegAugment, seed: int,
               iteration: int, batch_size: int, outlines: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Batch `iteration`: (N, C, R, R) and (N, 1, R, R) float32; a pure function of (seed, iteration).

    C is 3 (RGB), or 4 with `outlines` (uint8 (M, R, R) filled face outlines, one per image): the outline is
    the 4th channel, as an outline segmenter takes it."""
    rng = np.random.default_rng([seed, iteration])
    size = images.shape[1]
    x = np.empty((batch_size, 3 if outlines is None else 4, size, size), np.float32)
    y = np.empty((batch_size, 1, size, size), np.float32)
    for i in range(batch_size):
        j, k = (int(v) for v in rng.integers(len(images), size=2))
        img, msk, out = make_sample(rng, images[j], masks[j], occluders, aug, images[k],
                                    None if outlines is None else outlines[j])
        x[i, :3] = img.transpose(2, 0, 1)
        if out is not None:
            x[i, 3] = out
        y[i, 0] = msk
    return x, y
