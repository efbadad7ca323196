"""Facesets: folders of aligned face images, each carrying its own metadata."""

from facedouble.faceset.meta import FaceMeta, read_face, read_meta, write_face
from facedouble.faceset.store import Faceset

__all__ = ["FaceMeta", "Faceset", "read_face", "read_meta", "write_face"]
