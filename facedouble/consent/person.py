"""Consent tied to the person: the faces a consent record covers are compared with the person who signed.

A consent record may hold reference identity embeddings (dlib's 128-d ResNet descriptor, the extract
stage's `IdentityEmbedder`) of the performer, taken from the release session (a faceset, a clip or
photos: `facedouble identity add NAME --release R --reference PATH`). Binding a faceset to the record,
and every training session on it, samples up to SAMPLE_FACES faces of the faceset (evenly over its sorted
names) and measures each one's distance to the nearest reference embedding. The faceset is the person's
when the median of those distances is at most THRESHOLD; otherwise it is refused, so a binding copied into
another person's faceset is refused.

THRESHOLD = 0.5, from GRID (9 clips, 8 speakers, every 5th face embedded, the statistic above): the same
speaker in two sessions (id2_vcd_swwp2s vs pwij3p) gives 0.225 (worst face 0.255); the 35 pairs of
different speakers give 0.658 to 1.006 (median of pairs ~0.82). 0.5 sits in the gap, below dlib's own
0.6 convention for single pairs (the median over many faces is steadier than one pair). GRID is frontal,
evenly lit footage: profiles, make-up or ageing between the release session and the shoot move the
same-person figure up, so the reference should come from footage like the shoot's.
A record without references (made before this check, or through the Python API without `reference`)
cannot be checked against the person, so binding a faceset to it and training on it are refused with one
line naming the fix (a new record with --reference); it still serves renders of models already trained.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from facedouble.errors import InputError, PolicyError

THRESHOLD = 0.5
SAMPLE_FACES = 16  # faces compared per check (each costs ~40-130 ms when its embedding is not stored)
MAX_REFERENCES = 16  # embeddings kept in a record
EMBEDDING_SIZE = 128


def _sample(items: list, count: int) -> list:
    if len(items) <= count:
        return list(items)
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, count).round()]


def faceset_embeddings(faceset_dir: str | Path, count: int = SAMPLE_FACES) -> np.ndarray:
    """(n, 128) identity embeddings of up to `count` faces spread over the faceset: the stored ones where
    extract kept them, computed from the aligned face for the others."""
    from facedouble.faceset.store import Faceset

    faceset = Faceset(faceset_dir)
    paths = faceset.paths()
    if not paths:
        raise InputError(f"faceset {faceset_dir} holds no faces")
    stored = []
    for path in _sample(paths, 4 * count):  # read only a sample's metadata: a faceset may hold 10 000 faces
        meta = faceset.meta(path)
        if meta.embedding is not None:
            stored.append(np.asarray(meta.embedding, np.float64))
    if len(stored) >= min(count, len(paths)) or len(stored) >= 4:
        return np.asarray(_sample(stored, count))
    from facedouble.extract.identity import IdentityEmbedder

    embedder = IdentityEmbedder()
    computed = []
    for path in _sample(paths, count):
        image, meta = faceset.load(path)
        computed.append(embedder.embed(image, np.asarray(meta.aligned_landmarks, np.float64)))
    return np.asarray(computed)


def reference_embeddings(reference: str | Path) -> list[list[float]]:
    """Reference embeddings of the person who signed, from a faceset (up to MAX_REFERENCES of its faces), a
    clip, an image or an image folder (their mean)."""
    path = Path(reference)
    if not path.exists():
        raise InputError(f"reference not found: {path}")
    try:
        embeddings = faceset_embeddings(path, MAX_REFERENCES)
    except (InputError, OSError, ValueError):
        from facedouble.extract.identity import IdentityEmbedder
        from facedouble.extract.pipeline import reference_embedding

        embeddings = np.asarray([reference_embedding(path, IdentityEmbedder())])
    return [[round(float(v), 6) for v in row] for row in embeddings]


def check_references(value: Any) -> list[list[float]] | None:
    """The stored references if well-formed (list of 128-float lists, 1..MAX_REFERENCES); ValueError else."""
    if value is None:
        return None
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_REFERENCES or not all(
            isinstance(row, list) and len(row) == EMBEDDING_SIZE
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row) for row in value):
        raise ValueError(f"'reference_embeddings' must be 1-{MAX_REFERENCES} lists of {EMBEDDING_SIZE} numbers")
    return value


def identity_distance(faces: np.ndarray, references: list[list[float]]) -> float:
    """Median over the faces of the distance to the nearest reference embedding."""
    refs = np.asarray(references, np.float64)
    faces = np.asarray(faces, np.float64)
    return float(np.median(np.linalg.norm(faces[:, None, :] - refs[None, :, :], axis=2).min(axis=1)))


def check_person(name: str, references: list[list[float]] | None, faceset_dir: str | Path) -> float:
    """PolicyError unless the faceset shows the person of the references (a record without any is refused:
    it cannot be checked); returns the distance."""
    if not references:
        raise PolicyError(f"consent record {name!r} holds no reference faces of the person who signed, so "
                          f"{faceset_dir} cannot be checked against them: add a record with them "
                          "(`facedouble identity add NEW_NAME --release R --reference FACES`) and bind to that")
    distance = identity_distance(faceset_embeddings(faceset_dir), references)
    if distance > THRESHOLD:
        raise PolicyError(f"the faces in {faceset_dir} are not the person who signed {name!r}'s release "
                          f"(median identity distance {distance:.2f} > {THRESHOLD})")
    return distance
