"""Visible label for social-media deliverables: a plain text banner burnt into the frame."""

from __future__ import annotations

import numpy as np


def apply_label(frame_rgb: np.ndarray, text: str = "SYNTHETIC") -> np.ndarray:
    """Return a copy of the frame with `text` in white on a dark band, bottom-left, sized to the frame."""
    import cv2

    out = np.ascontiguousarray(frame_rgb.copy())
    h, w = out.shape[:2]
    scale = max(0.4, h / 720.0)
    thickness = max(1, round(2 * scale))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    margin = max(4, round(10 * scale))
    x0, y1 = margin, h - margin
    y0 = y1 - th - base - 2 * margin // 2
    band = out[max(0, y0):y1, x0:min(w, x0 + tw + margin)]
    band[:] = (band.astype(np.float32) * 0.35).astype(np.uint8)  # darken, don't hide: stays readable on white
    cv2.putText(out, text, (x0 + margin // 2, y1 - base - margin // 4), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), thickness, cv2.LINE_AA)
    return out
