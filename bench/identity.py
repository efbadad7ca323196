"""Identity-distance figures behind the consent person check and the pretraining rule, on the GRID clips.

    python -m bench.identity [--work DIR]

Prints, for dlib's 128-d descriptor (the one consent and `facedouble.train.pretrain` use): the spread of
one clip's faces, the distance between the two sessions of the same speaker (`id2_vcd_swwp2s`/`pwij3p`),
the cross-person distances, and how the greedy clustering at the same-person threshold counts people in
mixes of clips (five speakers, all nine clips, one speaker). The README's trust section quotes these.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from pathlib import Path

import numpy as np

from bench.common import grid_clips, machine

SAME_PERSON = ("id2_vcd_swwp2s", "pwij3p")
CROWD = ("bbaf2n", "lbbc2a", "lrwp9a", "sbia1a", "swiz3n")


def embeddings(work: Path) -> dict[str, np.ndarray]:
    """{clip stem: (n, 128) embeddings of every face}, extracted once into `work`."""
    from facedouble.extract.pipeline import ExtractConfig, extract
    from facedouble.faceset.store import Faceset

    out = {}
    for clip in grid_clips():
        folder = work / clip.stem
        if not (folder / ".complete").exists():
            extract(clip, folder, ExtractConfig(size=64, face_type="full", embed_every=1, progress=False))
            (folder / ".complete").write_text("")
        faceset = Faceset(folder)
        out[clip.stem] = np.asarray([faceset.meta(p).embedding for p in faceset.paths()], np.float64)
    return out


def clusters(parts: list[np.ndarray]) -> list[int]:
    """Cluster sizes of 64 faces spread evenly over the concatenated parts, as the pretraining rule samples."""
    from facedouble.consent.person import THRESHOLD
    from facedouble.train.pretrain import identity_clusters

    faces = np.concatenate(parts)
    return identity_clusters(faces[np.linspace(0, len(faces) - 1, 64).round().astype(int)], THRESHOLD)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="folder for the extracted facesets (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        emb = embeddings(args.work or Path(tmp))
        print(f"# identity distances on GRID ({machine()})")
        for stem, e in emb.items():
            pairs = np.linalg.norm(e[:, None] - e[None], axis=2)[np.triu_indices(len(e), 1)]
            to_mean = np.linalg.norm(e - e.mean(0), axis=1)
            print(f"{stem:16s} faces {len(e):3d}  pair median {np.median(pairs):.3f} max {pairs.max():.3f}  "
                  f"to mean max {to_mean.max():.3f}")
        cross = {}
        for a, b in itertools.combinations(emb, 2):
            d = np.linalg.norm(emb[a][:, None] - emb[b][None], axis=2)
            cross[(a, b)] = (float(np.median(d)), float(d.min()))
        same = cross.get(SAME_PERSON) or cross.get(SAME_PERSON[::-1])
        if same:
            print(f"same person, two sessions: median {same[0]:.3f}, closest {same[1]:.3f}")
        others = [v for k, v in cross.items() if set(k) != set(SAME_PERSON)]
        print(f"cross person ({len(others)} pairs): median {min(v[0] for v in others):.3f}-"
              f"{max(v[0] for v in others):.3f}, closest faces {min(v[1] for v in others):.3f}")
        print("clusters at the threshold: five speakers", clusters([emb[c] for c in CROWD if c in emb]),
              "| all clips", clusters(list(emb.values())), "| one speaker", clusters([emb[CROWD[0]]]))


if __name__ == "__main__":
    main()
