"""The one image-metadata codec: UTF-8 text embedded in PNG (iTXt chunk) or JPEG (APP11 segment).

Only text is stored, never pickle, so opening an untrusted image cannot execute code. Sizes are checked
before anything is read, so a crafted file cannot make the reader allocate without bound.
"""

from __future__ import annotations

import struct
import zlib

from facedouble.errors import InputError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8"
JPEG_APP11 = 0xEB
MAX_TEXT_BYTES = 4_000_000
_JPEG_SEGMENT_MAX = 65533  # payload bytes after the 2-byte length field


def image_format(data: bytes) -> str:
    """'png' or 'jpeg' from magic bytes; InputError otherwise."""
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data.startswith(JPEG_SOI):
        return "jpeg"
    raise InputError("not a PNG or JPEG image")


def _png_chunks(data: bytes):
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 12 + length
        if end > len(data):
            raise InputError("PNG chunk runs past the end of the file (truncated or corrupt)")
        yield pos, ctype, data[pos + 8:pos + 8 + length], end
        pos = end
        if ctype == b"IEND":
            return
    raise InputError("PNG has no IEND chunk (truncated)")


def _png_chunk(ctype: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + ctype + payload + struct.pack(">I", zlib.crc32(ctype + payload))


def set_text(data: bytes, key: str, text: str) -> bytes:
    """Return image bytes with `text` stored under `key`, replacing any earlier value for that key."""
    payload = text.encode("utf-8")
    if len(payload) > MAX_TEXT_BYTES:
        raise InputError(f"metadata for '{key}' is {len(payload)} bytes, over the {MAX_TEXT_BYTES} limit")
    data = remove_text(data, key)
    if image_format(data) == "png":
        chunk = _png_chunk(b"iTXt", key.encode("latin-1") + b"\x00\x00\x00\x00\x00" + payload)
        iend = next(pos for pos, ctype, _, _ in _png_chunks(data) if ctype == b"IEND")
        return data[:iend] + chunk + data[iend:]
    header = _jpeg_header(key)
    room = _JPEG_SEGMENT_MAX - len(header) - 2
    parts = [payload[i:i + room] for i in range(0, len(payload), room)] or [b""]
    if len(parts) > 255:
        raise InputError(f"metadata for '{key}' is too large for JPEG")
    segments = b"".join(
        b"\xff" + bytes([JPEG_APP11]) + struct.pack(">H", len(header) + 2 + len(part) + 2)
        + header + bytes([i, len(parts)]) + part
        for i, part in enumerate(parts)
    )
    return data[:2] + segments + data[2:]


def _jpeg_header(key: str) -> bytes:
    return b"FDMETA\x00" + key.encode("latin-1") + b"\x00"


def _jpeg_segments(data: bytes):
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise InputError("JPEG marker expected (corrupt file)")
        marker = data[pos + 1]
        if marker == 0xDA or marker == 0xD9:  # start of scan / end: no metadata after this
            return
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        end = pos + 2 + length
        if length < 2 or end > len(data):
            raise InputError("JPEG segment runs past the end of the file (truncated or corrupt)")
        yield pos, marker, data[pos + 4:end], end
        pos = end


def _itxt_text(rest: bytes, key: str) -> bytes:
    """The text bytes of an iTXt chunk after its keyword; InputError for any malformed field.

    Every field of a crafted chunk is checked here so a bad file gives the one-line InputError, never
    an IndexError/ValueError/zlib.error from deep inside the parser.
    """
    if len(rest) < 2:
        raise InputError(f"metadata for '{key}' is a malformed PNG iTXt chunk (too short)")
    compressed, method = rest[0], rest[1]
    if compressed not in (0, 1) or (compressed and method != 0):
        raise InputError(f"metadata for '{key}' uses an unknown PNG iTXt compression ({compressed}, {method})")
    # skip the language tag and the translated keyword, each NUL-terminated
    body = rest[2:]
    for _ in range(2):
        nul = body.find(b"\x00")
        if nul < 0:
            raise InputError(f"metadata for '{key}' is a malformed PNG iTXt chunk (missing NUL)")
        body = body[nul + 1:]
    if not compressed:
        return body
    inflater = zlib.decompressobj()
    try:
        # max_length bounds the output: a tiny "zip bomb" chunk cannot make us allocate gigabytes.
        text = inflater.decompress(body, MAX_TEXT_BYTES + 1)
    except zlib.error:
        raise InputError(f"metadata for '{key}' is corrupt (bad compressed PNG iTXt data)") from None
    if len(text) > MAX_TEXT_BYTES or inflater.unconsumed_tail:
        raise InputError(f"metadata for '{key}' is oversized (over {MAX_TEXT_BYTES} bytes uncompressed)")
    if not inflater.eof:
        raise InputError(f"metadata for '{key}' is corrupt (truncated compressed PNG iTXt data)")
    return text


def _find(data: bytes, key: str) -> list[tuple[int, int, bytes]]:
    """(start, end, payload) of every stored piece for `key`, in order."""
    found = []
    if image_format(data) == "png":
        prefix = key.encode("latin-1") + b"\x00"
        for pos, ctype, payload, end in _png_chunks(data):
            if ctype == b"iTXt" and payload.startswith(prefix):
                if len(payload) > MAX_TEXT_BYTES + 64:
                    raise InputError(f"metadata for '{key}' is oversized ({len(payload)} bytes)")
                found.append((pos, end, _itxt_text(payload[len(prefix):], key)))
    else:
        header = _jpeg_header(key)
        for pos, marker, payload, end in _jpeg_segments(data):
            if marker == JPEG_APP11 and payload.startswith(header):
                found.append((pos, end, payload[len(header) + 2:]))
    return found


def get_text(data: bytes, key: str) -> str | None:
    """Text stored under `key`, or None. InputError if it is oversized or not UTF-8."""
    pieces = _find(data, key)
    if not pieces:
        return None
    payload = b"".join(p for _, _, p in pieces)
    if len(payload) > MAX_TEXT_BYTES:
        raise InputError(f"metadata for '{key}' is oversized ({len(payload)} bytes)")
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"metadata for '{key}' is not UTF-8 text") from None


def remove_text(data: bytes, key: str) -> bytes:
    """Image bytes without any text stored under `key`."""
    for start, end, _ in reversed(_find(data, key)):
        data = data[:start] + data[end:]
    return data
