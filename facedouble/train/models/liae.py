"""LIAE: one shared encoder, two bottlenecks (AB shared by both identities, B for dst only), one decoder.

Training: src code = [AB(src), AB(src)], dst code = [B(dst), AB(dst)]. Swap = [AB(dst), AB(dst)]
through the decoder, i.e. the dst face's shared code rendered the way src faces are.
"""

from __future__ import annotations

import torch
from torch import nn

from facedouble.train.models.blocks import Decoder, Encoder, Inter, code_sizes, glorot_init


class LIAE(nn.Module):
    """DeepFaceLab's LIAE architecture."""

    def __init__(self, resolution: int, ae_dims: int, e_dims: int, d_dims: int, d_mask_dims: int, opts: str):
        super().__init__()
        low_res, enc_res = code_sizes(resolution, opts)
        self.encoder = Encoder(3, e_dims, opts)
        features = self.encoder.out_ch * enc_res * enc_res
        self.inter_AB = Inter(features, ae_dims, ae_dims * 2, low_res, opts)
        self.inter_B = Inter(features, ae_dims, ae_dims * 2, low_res, opts)
        self.decoder = Decoder(self.inter_AB.out_ch * 2, d_dims, d_mask_dims, opts)
        glorot_init(self)

    def forward(self, src: torch.Tensor, dst: torch.Tensor) -> dict[str, torch.Tensor]:
        """Reconstructions src->src and dst->dst (training); images in [0,1], NCHW."""
        n = src.shape[0]
        enc = self.encoder(torch.cat([src, dst]))
        ab = self.inter_AB(enc)
        src_ab, dst_ab = ab.split([n, dst.shape[0]])
        dst_b = self.inter_B(enc[n:])
        code = torch.cat([torch.cat([src_ab, src_ab], 1), torch.cat([dst_b, dst_ab], 1)])
        rgb, mask = self.decoder(code)
        src_rgb, dst_rgb = rgb.split([n, dst.shape[0]])
        src_mask, dst_mask = mask.split([n, dst.shape[0]])
        return {"src_rgb": src_rgb, "src_mask": src_mask, "dst_rgb": dst_rgb, "dst_mask": dst_mask}

    def swap(self, dst: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """dst->src: (rgb N3HW, mask N1HW), both in [0,1]."""
        ab = self.inter_AB(self.encoder(dst))
        return self.decoder(torch.cat([ab, ab], 1))
