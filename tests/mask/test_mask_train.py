"""Training uses hand-drawn labels as the face mask where a face carries them, the landmark hull elsewhere."""

import shutil

import numpy as np

from facedouble.faceset import Faceset
from facedouble.mask import FaceLabels, label_mask, write_labels
from facedouble.train.data import FaceBank


def test_labelled_faces_train_on_their_label_mask(tmp_path, grid_faceset):
    folder = tmp_path / "fs"
    shutil.copytree(grid_faceset("bbaf2n", embed_every=5), folder)
    paths = Faceset(folder).paths()[:3]
    # a face-sized box with the mouth region cut out (as if a microphone covered it), at 64 px
    labels = FaceLabels(include=[np.array([[8, 4], [56, 4], [56, 60], [8, 60]], float)],
                        exclude=[np.array([[20, 40], [44, 40], [44, 56], [20, 56]], float)])
    write_labels(paths[0], labels)
    bank = FaceBank(folder, 128, "full", paths=paths)  # model resolution twice the faceset's: labels scale
    got = bank.masks[0].astype(np.float32) / 255
    want = label_mask(FaceLabels([labels.include[0] * 2], [labels.exclude[0] * 2]), 128)
    assert np.array_equal(got, want)
    assert got[96, 64] == 0 and got[40, 64] == 1
    hull = bank.masks[1].astype(np.float32) / 255  # unlabelled: landmark hull, not a box
    assert 0 < hull.sum() < want.sum() + 32 * 32 * 4 and not np.array_equal(hull, want)
