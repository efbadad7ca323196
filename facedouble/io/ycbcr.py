"""Exact Y'CbCr <-> R'G'B' for high-bit-depth video (10/12/16-bit planar YUV), in NumPy.

Why not swscale: its 16-bit RGB is not full scale (limited-range 10-bit white, Y=940, comes out as 65283,
full-range 1023 as 65472) and its full-range 10-bit round trip moves levels by up to 3 codes. Here the
standard equations are applied in float32 (BT.709/601/2020/240M/FCC matrices, limited or full range, any
bit depth), RGB is kept unclipped (super-whites and sub-blacks survive), chroma is upsampled by repetition
and downsampled by a box average, so pixels merge does not change go back to exactly the code values they
came from, whatever the range.
"""

from __future__ import annotations

import numpy as np

# AVColorSpace -> (Kr, Kb); unspecified (2) and reserved are read as BT.601, as swscale does.
_KRKB = {1: (0.2126, 0.0722), 4: (0.30, 0.11), 5: (0.299, 0.114), 6: (0.299, 0.114), 7: (0.212, 0.087),
         9: (0.2627, 0.0593), 10: (0.2627, 0.0593)}
_BT601 = (0.299, 0.114)


_SUBSAMPLING = {"444": (0, 0), "422": (1, 0), "420": (1, 1), "440": (0, 1), "411": (2, 0), "410": (2, 2)}


def planar_layout(pix_fmt: str) -> tuple[int, int, int, bool] | None:
    """(bits, log2 chroma width divisor, log2 chroma height divisor, alpha) of a little-endian planar YUV
    pixel format above 8 bits (yuv422p10le, yuva444p12le, ...); None for any other."""
    import re

    match = re.fullmatch(r"yuv(a?)(4\d\d)p(9|1[0-6])le", pix_fmt or "")
    if not match or match.group(2) not in _SUBSAMPLING:
        return None
    cw, ch = _SUBSAMPLING[match.group(2)]
    return int(match.group(3)), cw, ch, bool(match.group(1))


def _scales(bits: int, full: bool) -> tuple[float, float, float, float]:
    """(Y offset, Y range, C offset, C range) in code values."""
    if full:
        top = float((1 << bits) - 1)
        return 0.0, top, float(1 << (bits - 1)), top
    unit = float(1 << (bits - 8))
    return 16.0 * unit, 219.0 * unit, 128.0 * unit, 224.0 * unit


def _forward(colorspace: int, bits: int, full: bool) -> np.ndarray:
    """3x4 matrix: [R, G, B, 1] (nominal 0..1) -> [Y, Cb, Cr] code values (float64)."""
    kr, kb = _KRKB.get(colorspace, _BT601)
    kg = 1.0 - kr - kb
    y0, yr, c0, cr = _scales(bits, full)
    sb, sr = cr * 0.5 / (1 - kb), cr * 0.5 / (1 - kr)
    return np.array([[yr * kr, yr * kg, yr * kb, y0],
                     [-sb * kr, -sb * kg, sb * (1 - kb), c0],
                     [sr * (1 - kr), -sr * kg, -sr * kb, c0]])


def _inverse(colorspace: int, bits: int, full: bool) -> np.ndarray:
    """3x4 matrix: [Y, Cb, Cr, 1] code values -> [R, G, B] nominal (the exact inverse of `_forward`)."""
    forward = _forward(colorspace, bits, full)
    inv = np.linalg.inv(forward[:, :3])
    return np.hstack([inv, -(inv @ forward[:, 3:])])


def _plane(frame, index: int, width: int, height: int) -> np.ndarray:  # noqa: ANN001 - av.VideoFrame
    plane = frame.planes[index]
    row = plane.line_size // 2
    return np.frombuffer(plane, np.dtype("<u2")).reshape(-1, row)[:height, :width]


def to_rgb(frame, colorspace: int, full_range: bool) -> np.ndarray:  # noqa: ANN001 - av.VideoFrame
    """A decoded planar high-bit-depth YUV frame -> float32 RGB (H, W, 3), nominal 0..1, not clipped."""
    import cv2

    bits, cw, ch, _ = planar_layout(frame.format.name)
    w, h = frame.width, frame.height
    wc, hc = -(-w >> cw), -(-h >> ch)
    planes = [_plane(frame, 0, w, h).astype(np.float32)]
    for index in (1, 2):
        chroma = _plane(frame, index, wc, hc).astype(np.float32)
        if cw or ch:  # repeat each chroma sample over the pixels it covers (exact for integer factors)
            chroma = cv2.resize(chroma, (wc << cw, hc << ch), interpolation=cv2.INTER_NEAREST)[:h, :w]
        planes.append(np.ascontiguousarray(chroma))
    return cv2.transform(cv2.merge(planes), _inverse(colorspace, bits, full_range).astype(np.float32))


def from_rgb(rgb: np.ndarray, pix_fmt: str, colorspace: int, full_range: bool, alpha: np.ndarray | None = None):
    """RGB (float nominal 0..1, or uint8/uint16 full scale) -> an av.VideoFrame in planar YUV `pix_fmt`
    (chroma box-averaged, codes rounded and clipped to the bit depth); `alpha` (0..1) fills a yuva format's
    alpha plane (opaque when None)."""
    import av
    import cv2

    bits, cw, ch, has_alpha = planar_layout(pix_fmt)
    if rgb.dtype == np.uint8:
        rgb = rgb.astype(np.float32) * np.float32(1 / 255.0)
    elif rgb.dtype == np.uint16:
        rgb = rgb.astype(np.float32) * np.float32(1 / 65535.0)
    rgb = np.ascontiguousarray(rgb, dtype=np.float32)
    h, w = rgb.shape[:2]
    top = (1 << bits) - 1
    y, cb, cr = cv2.split(cv2.transform(rgb, _forward(colorspace, bits, full_range).astype(np.float32)))
    if cw or ch:
        cb, cr = _box(cb, cw, ch), _box(cr, cw, ch)
    planes = [y, cb, cr]
    if has_alpha:
        planes.append((alpha.astype(np.float32) if alpha is not None else np.ones((h, w), np.float32))
                      * np.float32(top))
    frame = av.VideoFrame(w, h, pix_fmt)
    for index, values in enumerate(planes):
        np.rint(values, out=values)
        np.clip(values, 0, top, out=values)
        codes = values.astype("<u2")
        plane = frame.planes[index]
        row = plane.line_size // 2
        if row != codes.shape[1]:
            codes = np.pad(codes, ((0, 0), (0, row - codes.shape[1])))
        plane.update(codes)
    frame.colorspace = colorspace if colorspace in _KRKB else 2
    frame.color_range = 2 if full_range else 1
    return frame


def _box(plane: np.ndarray, cw: int, ch: int) -> np.ndarray:
    """Average (2^ch x 2^cw) blocks (edge blocks padded by repetition)."""
    import cv2

    h, w = plane.shape
    fy, fx = 1 << ch, 1 << cw
    ph, pw = -(-h // fy) * fy, -(-w // fx) * fx
    if (ph, pw) != (h, w):
        plane = cv2.copyMakeBorder(plane, 0, ph - h, 0, pw - w, cv2.BORDER_REPLICATE)
    return cv2.resize(plane, (pw // fx, ph // fy), interpolation=cv2.INTER_AREA)
