"""DF: one shared encoder and bottleneck ("inter"), one decoder per identity.

Swap = dst face -> shared code -> src decoder.

Several dst identities (`facedouble train --dst A --dst B ...`, as in Disney/ETH's multi-identity
face swapping: one shared encoder, one decoder per identity) add one decoder per extra dst faceset. The
first keeps the name `decoder_dst`, the others are `decoder_dst_1` ... `decoder_dst_<N-1>`, so a
single-dst model has exactly the weights (and parameter order) it always had and old checkpoints load
and resume unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from facedouble.train.models.blocks import Decoder, Encoder, Inter, code_sizes, glorot_init


def dst_decoder_name(index: int) -> str:
    """Attribute (and state-dict prefix) of dst set `index`'s decoder."""
    return "decoder_dst" if index == 0 else f"decoder_dst_{index}"


class DF(nn.Module):
    """DeepFaceLab's DF architecture, with one dst decoder per dst faceset (`dst_count`, default 1)."""

    def __init__(self, resolution: int, ae_dims: int, e_dims: int, d_dims: int, d_mask_dims: int, opts: str,
                 dst_count: int = 1):
        super().__init__()
        if dst_count < 1:
            raise ValueError(f"dst_count must be >= 1, got {dst_count}")
        low_res, enc_res = code_sizes(resolution, opts)
        self.dst_count = dst_count
        self.encoder = Encoder(3, e_dims, opts)
        self.inter = Inter(self.encoder.out_ch * enc_res * enc_res, ae_dims, ae_dims, low_res, opts)
        self.decoder_src = Decoder(self.inter.out_ch, d_dims, d_mask_dims, opts)
        for i in range(dst_count):
            setattr(self, dst_decoder_name(i), Decoder(self.inter.out_ch, d_dims, d_mask_dims, opts))
        glorot_init(self)

    def dst_decoder(self, index: int) -> nn.Module:
        """The decoder of dst set `index` (0 = the first --dst)."""
        return getattr(self, dst_decoder_name(index))

    def forward(self, src: torch.Tensor, dst: torch.Tensor,
                dst_split: Sequence[int] | None = None) -> dict[str, torch.Tensor]:
        """Reconstructions src->src and dst->dst (training); images in [0,1], NCHW.

        `dst_split`: how many of the `dst` rows (in order) belong to each dst set; each run is decoded by
        that set's decoder and the outputs are joined in the same order. None: every row is set 0's.
        """
        codes = self.inter(self.encoder(torch.cat([src, dst])))
        src_code, dst_code = codes.split([src.shape[0], dst.shape[0]])
        src_rgb, src_mask = self.decoder_src(src_code)
        if dst_split is None or len(dst_split) == 1:
            dst_rgb, dst_mask = self.decoder_dst(dst_code)
        else:
            if len(dst_split) > self.dst_count or sum(dst_split) != dst.shape[0]:
                raise ValueError(f"dst_split {list(dst_split)} does not fit {dst.shape[0]} dst rows and "
                                 f"{self.dst_count} dst decoders")
            parts = [self.dst_decoder(i)(code) for i, code in enumerate(dst_code.split(list(dst_split)))]
            dst_rgb, dst_mask = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        return {"src_rgb": src_rgb, "src_mask": src_mask, "dst_rgb": dst_rgb, "dst_mask": dst_mask,
                "src_code": src_code, "dst_code": dst_code}

    def swap(self, dst: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """dst->src: (rgb N3HW, mask N1HW), both in [0,1]."""
        return self.decoder_src(self.inter(self.encoder(dst)))
