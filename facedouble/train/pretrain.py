"""The pretraining rule: a pretrain faceset must show many people, so pretraining cannot learn one person.

Pretraining needs no consent (a pretrained model cannot swap until it is trained on a consented faceset),
which makes it the way to launder an identity: pretrain on person X alone, then train one iteration on Y's
consented faceset, and a model of X carries Y's consent. So a pretrain faceset is checked first:
up to SAMPLE_FACES faces, spread over the faceset, are embedded (dlib's descriptor, as consent uses) and
clustered greedily with the same-person threshold of `facedouble.consent.person` (0.5). A cluster holding at
least MIN_CLUSTER_SHARE of the sample counts as one identity. The faceset is accepted when it shows at
least MIN_IDENTITIES identities and no identity holds more than MAX_IDENTITY_SHARE of the sample.

The threshold (0.5, a face joins a cluster whose mean lies within it) is the consent check's, chosen from
GRID (9 clips, 8 speakers, every face embedded, 64 px full faces): faces of one clip lie 0.14-0.21 apart
(median per clip; worst pair 0.36) and at most 0.26 from their clip's mean; the same speaker in two sessions
(id2_vcd_swwp2s / pwij3p) 0.27 (median); different speakers 0.68-1.02 (median per pair, 35 pairs), the
closest two faces of different speakers 0.59. Clustering with it counts GRID's people exactly: 5 speakers ->
5 clusters of 12-13 faces; the 9 clips -> 8 clusters (the two sessions of one speaker merge); one speaker
-> 1 cluster of 64.
The counts are policy, not measurement: DeepFaceLab's pretrain sets hold thousands of people; at least 4
identities with none above 40 % is a floor a studio's own crowd footage clears easily, while one performer
(100 %) or one performer plus a few extras (> 40 %) is refused. A refusal is known as soon as one cluster
passes 40 % of the sample, so embedding stops there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from facedouble.errors import PolicyError

SAMPLE_FACES = 64
MIN_IDENTITIES = 4
MAX_IDENTITY_SHARE = 0.4
MIN_CLUSTER_SHARE = 0.05  # smaller clusters are stray detections, not people


class IdentityClusters:
    """Greedy online identity clustering: each face joins the nearest cluster whose running mean lies within
    `threshold`, else starts a new one (one pass, so a check can stop as soon as its outcome is known)."""

    def __init__(self, threshold: float):
        self.threshold = threshold
        self.centres: list[np.ndarray] = []
        self.counts: list[int] = []

    def add(self, embedding: np.ndarray) -> None:
        """Put one face's embedding into its cluster."""
        e = np.asarray(embedding, np.float64)
        if self.centres:
            distances = np.linalg.norm(np.asarray(self.centres) - e, axis=1)
            nearest = int(distances.argmin())
            if distances[nearest] <= self.threshold:
                self.counts[nearest] += 1
                self.centres[nearest] += (e - self.centres[nearest]) / self.counts[nearest]
                return
        self.centres.append(e.copy())
        self.counts.append(1)

    def sizes(self) -> list[int]:
        """Cluster sizes, largest first."""
        return sorted(self.counts, reverse=True)


def identity_clusters(embeddings: np.ndarray, threshold: float) -> list[int]:
    """Sizes of greedy identity clusters (IdentityClusters), largest first."""
    clusters = IdentityClusters(threshold)
    for e in np.asarray(embeddings, np.float64):
        clusters.add(e)
    return clusters.sizes()


def _sample_embeddings(faceset_dir: Path) -> tuple[int, Iterator[np.ndarray]]:
    """(sample size, embeddings one by one) of up to SAMPLE_FACES faces evenly spread over the faceset's sorted
    names (the stored one where extract kept it, else computed): every face of the sample counts, since a
    share is only as good as its sample. Lazy, so a refusal stops embedding early."""
    from facedouble.faceset.store import Faceset

    faceset = Faceset(faceset_dir)
    paths = faceset.paths()
    if not paths:
        raise PolicyError(f"--pretrain faceset {faceset_dir} holds no faces")
    picks = [paths[int(i)] for i in np.unique(np.linspace(0, len(paths) - 1, SAMPLE_FACES).round())]

    def embeddings() -> Iterator[np.ndarray]:
        embedder = None
        for path in picks:
            image, meta = faceset.load(path)
            if meta.embedding is not None:
                yield np.asarray(meta.embedding, np.float64)
                continue
            if embedder is None:
                from facedouble.extract.identity import IdentityEmbedder

                embedder = IdentityEmbedder()
            yield embedder.embed(image, np.asarray(meta.aligned_landmarks, np.float64))

    return len(picks), embeddings()


def check_pretrain_faceset(faceset_dir: str | Path) -> tuple[int, float]:
    """(identities, largest share) of a pretrain faceset, or a one-line PolicyError if it shows too few
    people or one person too often. Fails closed: without the trust module's threshold nothing is pretrained."""
    try:
        from facedouble.consent.person import THRESHOLD
    except ImportError as exc:
        raise PolicyError(f"pretraining refused: the identity check cannot run ({exc}); reinstall facedouble "
                          "with its trust module") from None
    rule = (f"--pretrain needs a faceset of many people (at least {MIN_IDENTITIES} identities, none above "
            f"{MAX_IDENTITY_SHARE:.0%} of the faces)")
    total, embeddings = _sample_embeddings(Path(faceset_dir))
    clusters = IdentityClusters(THRESHOLD)
    for seen, embedding in enumerate(embeddings, 1):
        clusters.add(embedding)
        if max(clusters.counts) > MAX_IDENTITY_SHARE * total:  # decided: stop embedding (a refusal is quick)
            raise PolicyError(f"{rule}; in {faceset_dir} one identity holds {max(clusters.counts)} of the first "
                              f"{seen} of {total} sampled faces (over {MAX_IDENTITY_SHARE:.0%})")
    sizes = clusters.sizes()
    identities = sum(1 for s in sizes if s / total >= MIN_CLUSTER_SHARE)
    largest = sizes[0] / total
    if identities < MIN_IDENTITIES:
        raise PolicyError(f"{rule}; {faceset_dir} shows {identities} (the largest holds {largest:.0%} of {total} "
                          "sampled faces)")
    return identities, largest
