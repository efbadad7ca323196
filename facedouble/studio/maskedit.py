"""Mask editor logic: which faces carry labels, one face's labels and predicted mask, saving labels.

Labels are stored through facedouble.mask (read_labels / write_labels / FaceLabels): the same schema as
`facedouble mask label import|export`, inside each face image. The predicted mask is the one
`facedouble mask apply` stores (FaceMeta.xseg); a face without one simply shows none.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from facedouble.errors import InputError
from facedouble.faceset.meta import read_meta
from facedouble.faceset.xseg import decode_mask
from facedouble.mask import FaceLabels, read_labels, write_labels
from facedouble.studio import gallery

_state: dict[str, tuple[tuple[int, int], bool, bool]] = {}  # path -> ((mtime_ns, size), labelled, predicted)
_lock = threading.Lock()


def _face_state(path: Path) -> tuple[bool, bool]:
    """(has labels, has a predicted mask), cached by the file's mtime and size (reading 10,000 headers once)."""
    st = path.stat()
    stamp = (st.st_mtime_ns, st.st_size)
    with _lock:
        hit = _state.get(str(path))
    if hit and hit[0] == stamp:
        return hit[1], hit[2]
    meta = read_meta(path)
    value = (meta.labels is not None, meta.xseg is not None)
    with _lock:
        _state[str(path)] = (stamp, *value)
    return value


def listing(folder: Path) -> dict[str, Any]:
    """Every face of the faceset in gallery order, with whether it is labelled / has a predicted mask."""
    names = gallery._names(folder)
    faces = []
    for name in names:
        labelled, predicted = _face_state(folder / name)
        faces.append({"name": name, "labelled": labelled, "predicted": predicted})
    return {"total": len(faces), "labelled": sum(f["labelled"] for f in faces), "faces": faces}


def face(folder: Path, name: str) -> dict[str, Any]:
    """One face for the editor: its size, labels (None if unlabelled), predicted-mask flag, and neighbours."""
    path = gallery.face_file(folder, name)
    if path.parent != folder:
        raise InputError(f"face {name!r} is rejected; restore it to label it")
    meta = read_meta(path)
    names = gallery._names(folder)
    i = names.index(name)

    def unlabelled(step: int) -> str | None:
        k = i + step
        while 0 <= k < len(names):
            if not _face_state(folder / names[k])[0]:
                return names[k]
            k += step
        return None

    return {"name": name, "index": i, "total": len(names), "size": meta.size,
            "labels": meta.labels.to_dict() if meta.labels is not None else None,
            "predicted": meta.xseg is not None,
            "prev": names[i - 1] if i > 0 else None, "next": names[i + 1] if i + 1 < len(names) else None,
            "prev_unlabelled": unlabelled(-1), "next_unlabelled": unlabelled(1)}


def predicted_png(folder: Path, name: str) -> bytes | None:
    """The predicted mask as an RGBA PNG overlay (green where the face is kept, transparent elsewhere); None
    when the face has none."""
    import cv2
    import numpy as np

    path = gallery.face_file(folder, name)
    meta = read_meta(path)
    if meta.xseg is None:
        return None
    mask = decode_mask(meta.xseg)
    rgba = np.zeros((*mask.shape, 4), np.uint8)
    rgba[..., 1] = 255
    rgba[..., 3] = np.round(mask * 255).astype(np.uint8)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    if not ok:
        raise InputError("could not encode the predicted mask")
    return buf.tobytes()


def save(folder: Path, name: str, labels: dict | None) -> dict[str, Any]:
    """Validate and store `labels` ({"include": [...], "exclude": [...]}; None or empty clears them)."""
    path = gallery.face_file(folder, name)
    if path.parent != folder:
        raise InputError(f"face {name!r} is rejected; restore it to label it")
    parsed = None
    if labels is not None:
        parsed = FaceLabels.from_dict(labels, size=read_meta(path).size)
        if not parsed.include and not parsed.exclude:
            parsed = None  # an emptied face is an unlabelled face, as `label import` with null makes it
    write_labels(path, parsed)
    stored = read_labels(path)
    return {"name": name, "labels": stored.to_dict() if stored is not None else None}
