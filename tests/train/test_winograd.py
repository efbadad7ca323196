"""Winograd F(4x4, 3x3) inference convs: same results as direct convolution, on real faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from facedouble.errors import FacedoubleError
from facedouble.train.models import winograd
from facedouble.train.models.presets import ModelConfig, build_model
from facedouble.train.swapper import load_swapper


@pytest.mark.parametrize("size", [(64, 64), (30, 22), (4, 4), (5, 9)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_conv3x3_matches_direct_convolution(face_batch: torch.Tensor, size: tuple[int, int],
                                             channels_last: bool) -> None:
    """Any frame size (tiles cropped at the right/bottom edge), either memory format, with and without bias."""
    torch.manual_seed(0)
    # Features of real faces, as a decoder layer sees them: a random conv lifts RGB to 24 channels.
    x = F.interpolate(face_batch, size=size, mode="bilinear", align_corners=False)
    x = F.leaky_relu(F.conv2d(x, torch.randn(24, 3, 3, 3), padding=1), 0.1)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    for bias in (torch.randn(40), None):
        conv = nn.Conv2d(24, 40, 3, padding=1, bias=bias is not None)
        if bias is not None:
            conv.bias.data = bias
        with torch.no_grad():
            want = conv(x)
            got = winograd.WinogradConv2d(conv)(x)
        assert got.shape == want.shape
        assert got.is_contiguous(memory_format=torch.channels_last)
        scale = want.abs().max().item()
        assert (got - want).abs().max().item() < 2e-5 * scale + 1e-6


def test_only_wide_plain_3x3_convs_are_converted() -> None:
    model = nn.Sequential(nn.Conv2d(256, 512, 3, padding=1),  # wide: converted
                          nn.Conv2d(512, 3, 3, padding=1),  # 3 outputs: transforms would cost more
                          nn.Conv2d(512, 512, 3, padding=1, stride=2),  # strided: not eligible
                          nn.Conv2d(512, 512, 5, padding=2),  # 5x5: not eligible
                          nn.Conv2d(512, 512, 1))
    assert winograd.convert(model) == 1
    assert isinstance(model[0], winograd.WinogradConv2d)
    assert [type(m) for m in model[1:]] == [nn.Conv2d] * 4
    assert winograd.convert(model, min_width=0) == 1  # the 512->3 head too, when asked for every conv
    with pytest.raises(ValueError):
        winograd.WinogradConv2d(model[2])


def test_converted_liae_model_swaps_like_the_original(face_batch: torch.Tensor) -> None:
    """A LIAE-UD model (DFL's default family) at 64 px with the real layer mix: wide decoder convs converted,
    narrow mask convs and heads left alone; the swapped face and mask stay within 1e-4 of the direct path."""
    torch.manual_seed(1)
    model = build_model(ModelConfig("liae", "ud", 64, "full", 128, 32, 48, 16)).eval()
    x = face_batch.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        want_rgb, want_mask = model.swap(x)
        converted = winograd.convert(model)
        got_rgb, got_mask = model.swap(x)
    assert converted >= 4
    assert (got_rgb - want_rgb).abs().max().item() < 1e-4
    assert (got_mask - want_mask).abs().max().item() < 1e-4


def test_load_swapper_conv_algorithms(trained_model: Path, face_batch: torch.Tensor) -> None:
    """The trained tiny model swaps real faces the same with every 3x3 conv forced to Winograd."""
    faces = (face_batch.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()
    direct = load_swapper(trained_model, precision="fp32", conv_algo="direct")
    forced = load_swapper(trained_model, precision="fp32", conv_algo="winograd")
    assert direct.winograd == 0 and forced.winograd > 0
    (want_rgb, want_mask), (got_rgb, got_mask) = direct.swap(faces), forced.swap(faces)
    assert np.abs(got_rgb - want_rgb).max() < 1e-4 and np.abs(got_mask - want_mask).max() < 1e-4
    assert load_swapper(trained_model, precision="fp32").winograd == 0  # the tiny model has no wide convs
    with pytest.raises(FacedoubleError, match="fp32 only"):
        load_swapper(trained_model, precision="bf16", conv_algo="winograd")
    with pytest.raises(FacedoubleError, match="unknown conv algorithm"):
        load_swapper(trained_model, conv_algo="fft")
