"""Stand-in models with the Swapper interface, for tests and benchmarks (not for production renders).

* `ShiftSwapper`: returns the input face with a fixed colour shift and an elliptical mask; costs
  nothing, so a benchmark with it measures merge's own overhead.
* `TorchStandin`: a DeepFaceLab-DF-shaped autoencoder (5x5 stride-2 encoder, dense bottleneck,
  pixel-shuffle decoder with RGB and mask heads) with seeded random weights, so inference costs
  what a real model of that size costs.
"""

from __future__ import annotations

import numpy as np


def ellipse_mask(size: int) -> np.ndarray:
    """Soft ellipse covering the central face area of an aligned crop."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    c = (size - 1) / 2.0
    r = ((xx - c) / (0.36 * size)) ** 2 + ((yy - c * 1.1) / (0.44 * size)) ** 2
    return np.clip((1.0 - r) * 4.0, 0.0, 1.0)


class ShiftSwapper:
    """Identity 'swap' with a colour shift: makes every change merge applies visible and checkable."""

    def __init__(self, resolution: int = 128, face_type: str = "full", shift: tuple[float, float, float] = (
            0.12, -0.05, -0.08)):
        self.resolution = resolution
        self.face_type = face_type
        self.model_hash = "standin-shift"
        self.consent: dict | None = None
        self.shift = np.asarray(shift, np.float32)
        self._mask = ellipse_mask(resolution)
        self.calls = 0

    def swap(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Faces (N, R, R, 3) uint8 -> (shifted rgb, ellipse mask)."""
        self.calls += 1
        rgb = np.clip(faces.astype(np.float32) / 255.0 + self.shift, 0.0, 1.0)
        return rgb, np.broadcast_to(self._mask, faces.shape[:3]).copy()


class StaticFaceSwapper:
    """Returns the same face for every input (a perfectly identity-only model): any jitter in the crop
    shows up one to one in the render, which makes it the harshest test of temporal smoothing."""

    def __init__(self, face: np.ndarray, face_type: str = "full"):
        self.resolution = int(face.shape[0])
        self.face_type = face_type
        self.model_hash = "standin-static"
        self.consent: dict | None = None
        self._face = face.astype(np.float32) / 255.0
        self._mask = ellipse_mask(self.resolution)

    def swap(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The stored face and the ellipse mask, once per input."""
        n = len(faces)
        return np.broadcast_to(self._face, (n, *self._face.shape)).copy(), np.broadcast_to(
            self._mask, faces.shape[:3]).copy()


class TorchStandin:
    """Random-weight DF-style autoencoder (ae_dims/e_dims/d_dims as in DeepFaceLab's SAEHD).

    ~23 GFLOP per 128 px face as DF-128 (DFL's residual blocks left out), ~6 GFLOP with `double`.
    """

    def __init__(self, resolution: int = 128, ae_dims: int = 256, e_dims: int = 64, d_dims: int = 64,
                 face_type: str = "full", threads: int | None = None, bf16: bool = True, double: bool = False):
        import torch
        from torch import nn

        torch.manual_seed(0)
        if threads:
            torch.set_num_threads(threads)
        self.resolution, self.face_type = resolution, face_type
        self.model_hash, self.consent = "standin-torch", None
        self.bf16 = bf16
        # DFL's -d option: the decoder works at half resolution and a final depth-to-space doubles it.
        lowest = resolution // (32 if double else 16)
        enc_lowest = resolution // 16
        heads = 4 if double else 1

        def down(cin: int, cout: int) -> nn.Module:
            return nn.Sequential(nn.Conv2d(cin, cout, 5, 2, 2), nn.LeakyReLU(0.1))

        def up(cin: int, cout: int) -> nn.Module:
            return nn.Sequential(nn.Conv2d(cin, cout * 4, 3, 1, 1), nn.LeakyReLU(0.1), nn.PixelShuffle(2))

        class Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.enc = nn.Sequential(down(3, e_dims), down(e_dims, e_dims * 2), down(e_dims * 2, e_dims * 4),
                                         down(e_dims * 4, e_dims * 8), nn.Flatten())
                self.inter = nn.Sequential(nn.Linear(e_dims * 8 * enc_lowest * enc_lowest, ae_dims),
                                           nn.Linear(ae_dims, ae_dims * lowest * lowest))
                self.ups = nn.Sequential(up(ae_dims, ae_dims), up(ae_dims, d_dims * 8), up(d_dims * 8, d_dims * 4),
                                         up(d_dims * 4, d_dims * 2))
                self.rgb = nn.Sequential(nn.Conv2d(d_dims * 2, 3 * heads, 1), nn.PixelShuffle(2 if double else 1))
                self.mask = nn.Sequential(nn.Conv2d(d_dims * 2, heads, 1), nn.PixelShuffle(2 if double else 1))
                self.ae_dims, self.lowest = ae_dims, lowest

            def forward(self, x):  # noqa: ANN001, ANN202
                z = self.inter(self.enc(x)).view(-1, self.ae_dims, self.lowest, self.lowest)
                y = self.ups(z)
                return torch.sigmoid(self.rgb(y)), torch.sigmoid(self.mask(y))

        self.net = Net().eval().to(memory_format=torch.channels_last)
        self._torch = torch
        self._ellipse = ellipse_mask(resolution)

    def swap(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the network; the mask is the ellipse (random weights give no useful mask)."""
        torch = self._torch
        x = torch.from_numpy(faces).permute(0, 3, 1, 2).float().div_(255.0)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            rgb, _ = self.net(x)
        rgb = rgb.float().permute(0, 2, 3, 1).numpy()
        # Keep the output face-like (blend with the input) so colour/blend stages see realistic data.
        rgb = 0.9 * faces.astype(np.float32) / 255.0 + 0.1 * rgb
        return np.ascontiguousarray(rgb, dtype=np.float32), np.broadcast_to(self._ellipse, faces.shape[:3]).copy()
