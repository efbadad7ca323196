"""Occlusion-aware masks: hand-drawn labels stored in each face image, and detected occluders (hands)."""

from facedouble.mask.labels import FaceLabels, label_mask, read_labels, write_labels

__all__ = ["FaceLabels", "label_mask", "read_labels", "write_labels"]
