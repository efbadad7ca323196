"""The report's occluder measure: the share of a hand's pixels over the face that the render left as the plate."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from facedouble.faceset.labels import FaceLabels
from facedouble.report.build import ReportConfig, build_report, occluder_region
from facedouble.report.metrics import occluder_untouched
from tests.footage import frames_of, write_clip

BIRD = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "intel" / "bird.mkv"


def test_untouched_counts_pixels_within_codec_noise():
    target = np.full((8, 8, 3), 100, np.uint8)
    render = target.copy()
    render[:4] += 8  # within tolerance: left alone
    render[:2, :4, 1] += 20  # painted over (one channel is enough)
    occ = np.zeros((8, 8), bool)
    occ[:, :4] = True
    assert occluder_untouched(render, target, occ) == (32 - 8, 32)
    assert occluder_untouched(render, target, np.zeros((8, 8), bool)) == (0, 0)


def test_labelled_exclude_polygons_map_into_the_frame():
    # a 100 px aligned face at (50, 20) of the frame, scaled 1:1; its label excludes a box inside the outline
    labels = FaceLabels([np.array([[0, 0], [100, 0], [100, 100], [0, 100]], float)],
                        [np.array([[20, 60], [80, 60], [80, 90], [20, 90]], float)])
    meta = SimpleNamespace(labels=labels, size=100, inverse=np.array([[1, 0, 50], [0, 1, 20]], float))
    frame = np.zeros((160, 200, 3), np.uint8)
    occ = occluder_region(frame, SimpleNamespace(landmarks=None), np.ones((160, 200), bool), [meta], hands=False)
    ys, xs = np.nonzero(occ)
    assert abs(occ.sum() - 60 * 30) < 150
    assert (ys.min(), xs.min()) == (80, 70) and abs(ys.max() - 110) <= 1 and abs(xs.max() - 130) <= 1


@pytest.fixture(scope="module")
def bird(tmp_path_factory):
    """Frames 20-31 of intel/bird.mkv (the signer's hand over the mouth), as the target and two renders."""
    if not BIRD.exists():
        pytest.skip("intel/bird.mkv not available")
    tmp = tmp_path_factory.mktemp("occ")
    frames = frames_of(BIRD, 32)[20:]
    grey = [np.full_like(f, 128) for f in frames]  # a render that painted over everything, hand included
    return write_clip(tmp / "target.mp4", frames), write_clip(tmp / "grey.mp4", grey)


def test_bird_hand_left_alone_scores_one_and_painted_over_scores_near_zero(bird):
    target, grey = bird
    cfg = ReportConfig(embed_every=100, progress=False)
    same = build_report(target, target, target, cfg)["summary"]
    assert same["occluder_frames"] >= 6 and same["occluder_untouched"] == 1.0
    painted = build_report(grey, target, target, cfg)["summary"]
    assert painted["occluder_frames"] == same["occluder_frames"]  # measured on the target's face and hands
    assert painted["occluder_untouched"] < 0.05
    none = build_report(target, target, target, ReportConfig(embed_every=100, progress=False, hands=False))
    assert none["summary"]["occluder_untouched"] is None and none["summary"]["occluder_frames"] == 0


def test_labels_faceset_gives_each_frame_its_labelled_occluders(tmp_path, grid_faceset):
    import shutil

    from facedouble.errors import InputError
    from facedouble.faceset import Faceset
    from facedouble.mask import write_labels
    from facedouble.report.build import _labelled_by_frame

    folder = tmp_path / "fs"
    shutil.copytree(grid_faceset("bbaf2n", embed_every=5), folder)
    box = [np.array([[20, 40], [40, 40], [40, 55], [20, 55]], float)]
    outline = [np.array([[0, 0], [63, 0], [63, 63], [0, 63]], float)]
    metas = Faceset(folder).metas()
    write_labels(metas[0][0], FaceLabels(outline, box))  # a hand-drawn occluder
    write_labels(metas[1][0], FaceLabels(outline, []))  # labelled, nothing covers it
    found = _labelled_by_frame(str(folder))
    assert list(found) == [metas[0][1].frame_index] and found[metas[0][1].frame_index][0].labels.exclude
    assert _labelled_by_frame(None) == {}
    with pytest.raises(InputError, match="labels faceset not found"):
        _labelled_by_frame(str(tmp_path / "missing"))
