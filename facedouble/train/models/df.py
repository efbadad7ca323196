"""DF: one shared encoder and bottleneck ("inter"), one decoder per identity.

Swap = dst face -> shared code -> src decoder.
"""

from __future__ import annotations

import torch
from torch import nn

from facedouble.train.models.blocks import Decoder, Encoder, Inter, code_sizes, glorot_init


class DF(nn.Module):
    """DeepFaceLab's DF architecture."""

    def __init__(self, resolution: int, ae_dims: int, e_dims: int, d_dims: int, d_mask_dims: int, opts: str):
        super().__init__()
        low_res, enc_res = code_sizes(resolution, opts)
        self.encoder = Encoder(3, e_dims, opts)
        self.inter = Inter(self.encoder.out_ch * enc_res * enc_res, ae_dims, ae_dims, low_res, opts)
        self.decoder_src = Decoder(self.inter.out_ch, d_dims, d_mask_dims, opts)
        self.decoder_dst = Decoder(self.inter.out_ch, d_dims, d_mask_dims, opts)
        glorot_init(self)

    def forward(self, src: torch.Tensor, dst: torch.Tensor) -> dict[str, torch.Tensor]:
        """Reconstructions src->src and dst->dst (training); images in [0,1], NCHW."""
        codes = self.inter(self.encoder(torch.cat([src, dst])))
        src_code, dst_code = codes.split([src.shape[0], dst.shape[0]])
        src_rgb, src_mask = self.decoder_src(src_code)
        dst_rgb, dst_mask = self.decoder_dst(dst_code)
        return {"src_rgb": src_rgb, "src_mask": src_mask, "dst_rgb": dst_rgb, "dst_mask": dst_mask,
                "src_code": src_code, "dst_code": dst_code}

    def swap(self, dst: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """dst->src: (rgb N3HW, mask N1HW), both in [0,1]."""
        return self.decoder_src(self.inter(self.encoder(dst)))
