"""Opt-in segmenter options: tone and beard/shadow augmentation, per-image input normalisation."""

import json

import numpy as np
import pytest
import torch

from facedouble.errors import InputError
from facedouble.mask.segmenter.augment import SegAugment, _shade, make_batch
from facedouble.mask.segmenter.model import Segmenter, SegmenterConfig

PLAIN = dict(rotation=0, scale=(1, 1), shift=0, warp=0, flip=0, colour=0, grey=0, blur=0, noise=0, occluder=0, patch=0)


def _faces(n=4, size=64):
    rng = np.random.default_rng(0)
    images = np.clip(rng.normal(170, 20, (n, size, size, 3)), 0, 255).astype(np.uint8)  # skin-bright, textured
    masks = np.zeros((n, size, size), np.uint8)
    masks[:, 4:60, 8:56] = 255
    return images, masks


def test_beard_darkens_the_face_and_keeps_its_label():
    images, masks = _faces()
    img, msk = images[0].astype(np.float32) / 255, masks[0].astype(np.float32) / 255
    for seed in range(12):
        out = img.copy()
        _shade(np.random.default_rng(seed), out, msk)
        changed = np.abs(out - img).max(2) > 0.05
        assert changed.any() and out[changed].mean() < img[changed].mean() - 0.1, seed
    _, y = make_batch(images, masks, [], SegAugment(**PLAIN, shade=1.0), 0, 1, 4)
    assert np.array_equal(y[:, 0], masks / 255.0)  # facial hair and shadows are face


def test_tone_changes_colour_but_no_label():
    images, masks = _faces()
    x, y = make_batch(images, masks, [], SegAugment(**PLAIN, tone=1.0), 0, 3, 4)
    assert np.array_equal(y[:, 0], masks / 255.0)
    assert not any(np.allclose(x[i], images[k].transpose(2, 0, 1) / 255.0, atol=0.02)
                   for i in range(4) for k in range(4))


def test_image_norm_undoes_a_colour_cast_and_round_trips_its_config():
    cfg = SegmenterConfig(resolution=64, widths=(4, 4, 4, 4, 4), norm="image")
    assert SegmenterConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert SegmenterConfig.from_dict({"resolution": 64, "widths": [4] * 5}).norm == "fixed"  # older models
    with pytest.raises(InputError, match="norm"):
        SegmenterConfig.from_dict({"resolution": 64, "widths": [4] * 5, "norm": "batch"})
    torch.manual_seed(0)
    net = Segmenter(cfg).eval()
    x = torch.rand(1, 3, 64, 64) * 0.5 + 0.2
    with torch.inference_mode():
        # a colour cast (a shift of each channel) is gone before the first layer
        assert torch.allclose(net(x), net(x + torch.tensor([0.1, 0.0, -0.1]).view(1, 3, 1, 1)), atol=1e-4)
