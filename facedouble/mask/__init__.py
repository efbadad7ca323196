"""Occlusion-aware masks: hand-drawn labels stored in each face image, and detected occluders (hands)."""

from facedouble.faceset.labels import FaceLabels
from facedouble.faceset.meta import read_labels, write_labels
from facedouble.mask.labels import label_mask

__all__ = ["FaceLabels", "label_mask", "read_labels", "write_labels"]
