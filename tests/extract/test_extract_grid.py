"""Extraction on the real GRID clips: detection rate, alignment accuracy, identity separation."""

import itertools

import numpy as np
import pytest

from facedouble.extract.identity import distance
from facedouble.face.align import eye_centres, template_in_output
from facedouble.faceset import Faceset
from tests.conftest import GRID_CLIPS, SAME_PERSON


@pytest.fixture(scope="module")
def facesets(grid_faceset):
    return {stem: grid_faceset(stem, embed_every=5) for stem in GRID_CLIPS}


def test_detection_rate_at_least_99_percent_on_every_clip(facesets):
    import json

    for stem, folder in facesets.items():
        report = json.loads((folder / "extract-report.json").read_text())
        rate = 1 - len(report["frames_without_face"]) / report["frames_analysed"]
        assert rate >= 0.99, f"{stem}: {rate:.3f}"
        assert report["faces_written"] == len(Faceset(folder)) >= 0.99 * 75
        assert len(report["tracks"]) == 1, f"{stem}: one speaker should give one track, got {report['tracks']}"


def test_aligned_eye_centres_land_on_the_template(facesets):
    size = 64
    template = template_in_output("full", size)
    target = np.stack([template[36 - 17:42 - 17].mean(0), template[42 - 17:48 - 17].mean(0)])
    errors = []
    for folder in facesets.values():
        for _, meta in Faceset(folder).metas():
            errors.append(np.linalg.norm(eye_centres(meta.aligned_landmarks) - target, axis=1).max() / size)
    errors = np.array(errors)
    assert (errors <= 0.02).mean() >= 0.95, f"share within 2%: {(errors <= 0.02).mean():.3f}"


def test_metadata_links_back_to_the_source_frame(facesets, grid_clip):
    from facedouble.face.align import transform_points

    folder = facesets["bbaf2n"]
    _, meta = next(iter(Faceset(folder).metas()))
    assert meta.source == str(grid_clip("bbaf2n")) and meta.frame_size == (360, 288)
    assert meta.timestamp == pytest.approx(meta.frame_index / 25)
    # transform and inverse are inverse of each other to sub-pixel accuracy
    back = transform_points(meta.aligned_landmarks, meta.inverse)
    assert np.abs(back - meta.landmarks).max() < 1e-6
    assert meta.mesh.shape == (478, 2)


def test_same_person_pair_is_closer_than_every_cross_person_pair(facesets):
    means = {}
    for stem, folder in facesets.items():
        embeddings = [m.embedding for _, m in Faceset(folder).metas() if m.embedding is not None]
        assert len(embeddings) >= 10
        means[stem] = np.mean(embeddings, 0)
    same = distance(means[SAME_PERSON[0]], means[SAME_PERSON[1]])
    cross = [distance(means[a], means[b]) for a, b in itertools.combinations(means, 2)
             if {a, b} != set(SAME_PERSON)]
    assert same < 0.45 and same < min(cross) - 0.1, (same, min(cross))
