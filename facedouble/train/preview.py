"""What a model shows of itself: the preview grid and the held-out reconstruction SSIM."""

from __future__ import annotations

import numpy as np
import torch

from facedouble.train.losses import ssim


@torch.inference_mode()
def reconstruction_ssim(model: torch.nn.Module, images: np.ndarray, resolution: int, side: str = "dst",
                        masks: np.ndarray | None = None, batch: int = 16) -> float:
    """Mean SSIM of side->side reconstructions of uint8 faces (N,H,W,3): a held-out quality figure.

    With `masks` (N,H,W uint8) both images are multiplied by the mask first, as in training, so the
    figure measures the face the model is trained on, not the background.
    """
    was_training = model.training
    model.eval()
    scores = []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(images[i:i + batch]).permute(0, 3, 1, 2).float() / 255
        m = torch.ones_like(x[:, :1]) if masks is None else \
            torch.from_numpy(masks[i:i + batch]).float()[:, None] / 255
        out = model(x, x)
        scores.append(ssim(out[f"{side}_rgb"].float() * m, x * m, max(3, int(resolution / 11.6))))
    model.train(was_training)
    return float(torch.cat(scores).mean())


def preview_grid(model: torch.nn.Module, batch: dict[str, np.ndarray], device: torch.device,
                 rows: int = 4) -> np.ndarray:
    """uint8 RGB grid: columns src, src->src, dst, dst->dst, dst->src."""
    with torch.inference_mode():
        src = torch.from_numpy(batch["src_target"][:rows]).permute(0, 3, 1, 2).to(device)
        dst = torch.from_numpy(batch["dst_target"][:rows]).permute(0, 3, 1, 2).to(device)
        out = model(src, dst)
        swap, _ = model.swap(dst)
    cols = [src, out["src_rgb"], dst, out["dst_rgb"], swap]
    cols = [c.float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() for c in cols]
    grid = np.concatenate([np.concatenate(list(c), axis=0) for c in cols], axis=1)
    return (grid * 255 + 0.5).astype(np.uint8)
