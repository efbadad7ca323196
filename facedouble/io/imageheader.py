"""Image dimensions from the first bytes of a file, so oversized images are refused before decoding.

A 16k x 16k PNG is a few hundred kilobytes on disk but 768 MiB of RGB once decoded; reading its size
from the header (PNG IHDR, JPEG SOFn, BMP, WebP) lets the reader refuse it without allocating anything.
Formats not recognised here fall through to the decoder (OpenCV caps those at 2^30 pixels).
"""

from __future__ import annotations

import struct
from pathlib import Path

from facedouble.errors import InputError

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def image_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) announced by the header bytes `head`, or None when not known from them."""
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 24 and head[12:16] == b"IHDR":
        return struct.unpack(">II", head[16:24])
    if head.startswith(b"\xff\xd8"):
        return _jpeg_size(head)
    if head.startswith(b"BM") and len(head) >= 26:
        width, height = struct.unpack("<ii", head[18:26])
        return abs(width), abs(height)  # negative height = top-down rows
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP" and len(head) >= 30:
        kind = head[12:16]
        if kind == b"VP8X":
            return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
        if kind == b"VP8L" and head[20] == 0x2F:
            bits = int.from_bytes(head[21:25], "little")
            return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
        if kind == b"VP8 ":
            width, height = struct.unpack("<HH", head[26:30])
            return width & 0x3FFF, height & 0x3FFF
    return None


def _jpeg_size(head: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 4 <= len(head):
        if head[pos] != 0xFF:
            return None
        marker = head[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length field
            pos += 2
            continue
        (length,) = struct.unpack(">H", head[pos + 2:pos + 4])
        if marker in _JPEG_SOF and pos + 9 <= len(head):
            height, width = struct.unpack(">HH", head[pos + 5:pos + 9])
            return width, height
        if marker in (0xD9, 0xDA) or length < 2:
            return None
        pos += 2 + length
    return None


def check_image_size(head: bytes, path: str | Path, max_pixels: int) -> None:
    """InputError (one line) when the header of `path` announces more than `max_pixels` pixels."""
    size = image_size(head)
    if size is not None and size[0] * size[1] > max_pixels:
        raise InputError(f"image {path} is {size[0]}x{size[1]}, over the {max_pixels // 1_000_000} MP limit; "
                         "refused before decoding")
