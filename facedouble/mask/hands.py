"""Hands as occluders: MediaPipe Hands on the face's neighbourhood of the source frame.

The aligned face crop is too small (64-256 px, the hand half outside it) for the palm detector, so the
detector sees a square of the source frame `CONTEXT` times the aligned crop's side around the face,
resized to `DETECT_SIZE`. Each hand's 21 landmarks become a convex hull in aligned-face pixels, dilated
because the landmarks sit on the joints, not on the skin outline. Models: hand_landmark_full.tflite and
palm_detection_full.tflite, shipped inside the mediapipe wheel (Apache-2.0); nothing is downloaded.
"""

from __future__ import annotations

import os
import threading

import cv2
import numpy as np

from facedouble.face.mesh import polygon_mask
from facedouble.log import native_stderr_silenced

CONTEXT = 3.0  # detector window side, in aligned-crop sides (the palm detector needs the palm, often off the face)
DETECT_SIZE = 256  # detector input side in pixels
DILATE = 0.06  # hull dilation, fraction of the aligned side (landmarks are joints; fingers are wider)

_local = threading.local()


class HandDetector:
    """MediaPipe Hands in static-image mode. Not thread-safe: use `detector()` for a per-thread one."""

    def __init__(self, max_hands: int = 2, min_confidence: float = 0.5) -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")
        with native_stderr_silenced():
            import mediapipe as mp

            self._hands = mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=max_hands,
                                                   model_complexity=1, min_detection_confidence=min_confidence)
            self._hands.process(np.zeros((DETECT_SIZE, DETECT_SIZE, 3), np.uint8))  # start the graph quietly

    def detect(self, image_rgb: np.ndarray) -> list[np.ndarray]:
        """(21, 2) landmark arrays in `image_rgb` pixels, one per hand found."""
        h, w = image_rgb.shape[:2]
        with native_stderr_silenced():
            result = self._hands.process(np.ascontiguousarray(image_rgb))
        return [np.array([(p.x * w, p.y * h) for p in hand.landmark], np.float64)
                for hand in (result.multi_hand_landmarks or [])]

    def close(self) -> None:
        """Release the MediaPipe graph."""
        self._hands.close()


def detector() -> HandDetector:
    """This thread's detector (merge composites faces on a thread pool)."""
    det = getattr(_local, "detector", None)
    if det is None:
        det = _local.detector = HandDetector()
    return det


def hands_near_face(frame_rgb: np.ndarray, to_aligned: np.ndarray, size: int,
                    det: HandDetector | None = None) -> list[np.ndarray]:
    """Hands around one face: (21, 2) landmarks in aligned-face pixels (size x size crop given by `to_aligned`)."""
    # window: the aligned crop, scaled by CONTEXT about its centre, resampled to DETECT_SIZE
    scale = DETECT_SIZE / (CONTEXT * size)
    shift = DETECT_SIZE / 2 - scale * size / 2
    to_window = np.vstack([to_aligned, [0, 0, 1]])
    to_window = (np.array([[scale, 0, shift], [0, scale, shift], [0, 0, 1]]) @ to_window)[:2]
    window = cv2.warpAffine(frame_rgb, to_window, (DETECT_SIZE, DETECT_SIZE), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT)
    hands = (det or detector()).detect(window)
    return [(pts - shift) / scale for pts in hands]


def hands_mask_from_points(hands: list[np.ndarray], size: int, dilate: float = DILATE) -> np.ndarray:
    """float32 (size, size): 1 on the dilated convex hull of each hand, 0 elsewhere."""
    out = np.zeros((size, size), np.float32)
    for pts in hands:
        out = np.maximum(out, polygon_mask(pts, size, convex=True))
    radius = int(round(dilate * size))
    if radius > 0 and out.any():
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        out = cv2.dilate(out, kernel)
    return out


def hands_mask(frame_rgb: np.ndarray, to_aligned: np.ndarray, size: int,
               det: HandDetector | None = None) -> np.ndarray:
    """Exclusion mask of the hands over one face, in aligned-face pixels (1 = hand)."""
    return hands_mask_from_points(hands_near_face(frame_rgb, to_aligned, size, det), size)
