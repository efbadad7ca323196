"""Model structure: DFL-equal parameter counts, shapes for every option, config validation."""

from __future__ import annotations

import pytest
import torch

from facedouble.errors import FacedoubleError
from facedouble.train.models.presets import ModelConfig, build_model, count_parameters, preset

# DeepFaceLab's own counts for the equivalent models (issue 3).
DFL_PARAMS = {"quick96": 38.3e6, "saehd-df-128": 57.5e6, "saehd-liae-ud-128": 82.4e6}


@pytest.mark.parametrize("name", sorted(DFL_PARAMS))
def test_preset_parameter_count_matches_dfl(name: str) -> None:
    with torch.device("meta"):  # shapes only: no memory, no init cost
        model = build_model(preset(name))
    n = count_parameters(model)
    assert abs(n - DFL_PARAMS[name]) / DFL_PARAMS[name] < 0.05, f"{name}: {n / 1e6:.2f} M"


@pytest.mark.parametrize("arch", ["df", "liae"])
@pytest.mark.parametrize("opts", ["", "u", "d", "ud", "t", "udt"])
def test_forward_and_swap_shapes(arch: str, opts: str) -> None:
    cfg = ModelConfig(arch=arch, opts=opts, resolution=64, ae_dims=16, e_dims=4, d_dims=4, d_mask_dims=2)
    model = build_model(cfg)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        out = model(x, x[:1])
        rgb, mask = model.swap(x)
    assert out["src_rgb"].shape == (2, 3, 64, 64) and out["src_mask"].shape == (2, 1, 64, 64)
    assert out["dst_rgb"].shape == (1, 3, 64, 64) and out["dst_mask"].shape == (1, 1, 64, 64)
    assert rgb.shape == (2, 3, 64, 64) and mask.shape == (2, 1, 64, 64)
    assert float(rgb.min()) >= 0 and float(rgb.max()) <= 1


def test_swap_uses_src_decoder_for_df() -> None:
    """DF's swap must be dst code -> *src* decoder; a mixed-up wiring would still have right shapes."""
    model = build_model(ModelConfig(resolution=32, ae_dims=8, e_dims=4, d_dims=4, d_mask_dims=2))
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        code = model.inter(model.encoder(x))
        assert torch.allclose(model.swap(x)[0], model.decoder_src(code)[0])
        assert not torch.allclose(model.swap(x)[0], model.decoder_dst(code)[0])


def test_liae_swap_is_ab_code_twice() -> None:
    model = build_model(ModelConfig(arch="liae", resolution=32, ae_dims=8, e_dims=4, d_dims=4, d_mask_dims=2))
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        ab = model.inter_AB(model.encoder(x))
        want = model.decoder(torch.cat([ab, ab], 1))[0]
        assert torch.allclose(model.swap(x)[0], want)
        # and the dst reconstruction uses B(dst) for the first half, so it differs from the swap
        assert not torch.allclose(model(x, x)["dst_rgb"], want)


def test_glorot_init_and_zero_bias() -> None:
    model = build_model(preset("tiny"))
    conv = model.encoder.layers[0].conv
    w = conv.weight.detach()
    bound = (6 / (conv.in_channels * 25 + conv.out_channels * 25)) ** 0.5
    assert float(w.abs().max()) <= bound + 1e-6
    assert float(w.abs().max()) > 0.8 * bound
    assert torch.count_nonzero(conv.bias) == 0


@pytest.mark.parametrize("bad", [dict(resolution=100), dict(resolution=48, opts="d"), dict(arch="xyz"),
                                 dict(opts="q"), dict(ae_dims=0), dict(resolution=1024)])
def test_invalid_config_is_a_user_error(bad: dict) -> None:
    with pytest.raises(FacedoubleError):
        build_model(ModelConfig(**bad))


def test_unknown_preset_is_a_user_error() -> None:
    with pytest.raises(FacedoubleError, match="unknown preset"):
        preset("saehd-9000")
