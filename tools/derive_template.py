"""Dev-time tool: mean-face template for alignment by generalized Procrustes analysis on GRID.

Prints TEMPLATE_17_67 for facedouble/face/template.py: points 17-67 of the mean shape, scaled and
shifted so the points span the unit square horizontally and brow-top to the lowest lip point vertically.
"""

from pathlib import Path

import numpy as np

from facedouble.extract.detectors import get_detector
from facedouble.extract.landmarks import FaceMeshLandmarker
from facedouble.face.align import umeyama
from facedouble.io.video import open_source

detector, mesher = get_detector("retinaface"), FaceMeshLandmarker()
shapes = []
for clip in sorted(Path("../shared/data/grid").glob("*.mpg")):
    for frame in list(open_source(clip))[::5]:
        dets = detector.detect(frame.image)
        if dets and (res := mesher.from_points5(frame.image, dets[0].points, dets[0].box)) is not None:
            shapes.append(res.landmarks[17:68])
mean = shapes[0] - shapes[0].mean(0)
for _ in range(10):
    aligned = [s @ umeyama(s, mean)[:, :2].T + umeyama(s, mean)[:, 2] for s in shapes]
    new = np.mean(aligned, 0)
    new -= new.mean(0)
    new /= np.sqrt((new ** 2).sum() / len(new))
    mean = new
# Level the eye line: the Procrustes mean keeps the arbitrary roll of the first shape.
eye_l, eye_r = mean[36 - 17:42 - 17].mean(0), mean[42 - 17:48 - 17].mean(0)
angle = -np.arctan2(*(eye_r - eye_l)[::-1])
rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
mean = mean @ rot.T
lo, hi = mean.min(0), mean.max(0)
unit = (mean - lo) / (hi - lo).max()
unit[:, 0] += (1 - (hi - lo)[0] / (hi - lo).max()) / 2
print(f"# from {len(shapes)} faces")
print("TEMPLATE_17_67 = np.array([")
for x, y in unit:
    print(f"    [{x:.6f}, {y:.6f}],")
print("])")
