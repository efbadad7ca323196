"""bench/device_check.sh in CPU mode, so the GPU script cannot rot between device loans."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_stored_faces_are_small_real_uint8_faces():
    path = ROOT / "bench" / "data" / "device_faces.npz"
    assert path.stat().st_size < 1024 * 1024
    with np.load(path) as data:
        for key in ("src", "dst"):
            a = data[key]
            assert a.dtype == np.uint8 and a.shape == (32, 64, 64, 3)
            assert a.std() > 20  # real images, not a constant fill
        # two different people: the mean faces differ clearly
        assert np.abs(data["src"].mean(0) - data["dst"].mean(0)).mean() > 10


@pytest.mark.slow
def test_device_check_cpu_tiny_passes():
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "2"}
    proc = subprocess.run(["bash", str(ROOT / "bench" / "device_check.sh"), "--device", "cpu", "--tiny",
                           "--iters", "1", "--batch", "2", "--swap-batch", "4", "--e2e-iters", "12"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "train tiny b2" in out and "swap tiny b4" in out and "e2e tiny 12 steps" in out
    assert "all checks passed" in out


def test_device_check_only_imports_pure_torch_modules():
    """The device machine has no cv2/PyAV/MediaPipe/dlib/onnxruntime: importing the check must not need them."""
    code = ("import sys, bench.device_check; bad = {'cv2', 'av', 'mediapipe', 'dlib', 'onnxruntime'} "
            "& set(sys.modules); assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_nan_loss_fails_the_check(monkeypatch):
    import torch

    from bench import device_check

    def nan_loss(pred_rgb, *args, **kwargs):
        return pred_rgb.float().mean(dim=(1, 2, 3)) * float("nan")

    monkeypatch.setattr(device_check, "identity_loss", nan_loss)
    with pytest.raises(device_check.CheckFailedError, match="loss became nan"):
        device_check.bench_train("tiny", 2, 1, torch.device("cpu"), bf16=False, compiled=False)


def test_missing_cuda_is_a_failure_not_a_silent_cpu_run():
    import torch

    from bench import device_check

    if torch.cuda.is_available():
        pytest.skip("CUDA present: the full device run is bench/device_check.sh's job")
    assert device_check.main(["--device", "cuda"]) == 1
