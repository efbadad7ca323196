"""Masks from hand-drawn labels: the include polygons filled, the exclude polygons cut out.

The labels themselves (schema, storage in the face image) are facedouble.faceset.labels.
"""

from __future__ import annotations

import numpy as np

from facedouble.faceset.labels import FaceLabels


def label_mask(labels: FaceLabels, size: int) -> np.ndarray:
    """(size, size) float32 in {0, 1}: union of the include polygons minus the exclude polygons."""
    import cv2

    mask = np.zeros((size, size), np.uint8)
    # fillPoly with 8 fractional bits keeps sub-pixel vertices where they were drawn
    def fill(polys: list[np.ndarray], value: int) -> None:
        if polys:
            pts = [np.round(np.asarray(p, np.float64) * 256).astype(np.int32) for p in polys]
            cv2.fillPoly(mask, pts, value, lineType=cv2.LINE_8, shift=8)

    fill(labels.include, 1)
    fill(labels.exclude, 0)
    return mask.astype(np.float32)
