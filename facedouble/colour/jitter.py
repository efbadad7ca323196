"""Random colour jitter for training augmentation (face model and segmenter), on float RGB in [0, 1]."""

from __future__ import annotations

import cv2
import numpy as np


def colour_jitter(rng: np.random.Generator, img: np.ndarray, power: float, *, hue_deg: float, saturation: float,
                  value: float, contrast: float) -> np.ndarray:
    """Shift hue by up to ±hue_deg·power degrees, scale saturation, value and contrast by up to ±(range·power).

    The result is not clipped: callers clip after any further step (a grey conversion must average the
    unclipped values to stay as it was)."""
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-1, 1) * hue_deg * power) % 360
    hsv[..., 1] = np.clip(hsv[..., 1] * (1 + rng.uniform(-saturation, saturation) * power), 0, 1)
    hsv[..., 2] = np.clip(hsv[..., 2] * (1 + rng.uniform(-value, value) * power), 0, 1)
    out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    c = 1 + rng.uniform(-contrast, contrast) * power
    return (out - out.mean()) * c + out.mean()
