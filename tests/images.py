"""Real images for upload tests: every upload is decoded whole by Pillow (backend/images.py), so a
PNG signature followed by zeros is no longer a photo."""

from __future__ import annotations

import io
import secrets
import struct
import zlib

from PIL import Image


def png(size: tuple[int, int] = (8, 8), color: tuple[int, int, int] = (0, 128, 0)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def unique_png() -> bytes:
    """A different photo on every call (uploads are told apart by their SHA-256)."""
    red, green, blue = secrets.token_bytes(3)
    return png((4, 4), (red, green, blue))


def jpeg(size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (30, 160, 60)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="JPEG", quality=90)
    return out.getvalue()


def truncated_jpeg() -> bytes:
    """A photo cut short in transfer: its header is whole, its picture is not."""
    whole = jpeg((400, 300))
    return whole[: len(whole) // 3]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid one-bit PNG of ``width`` x ``height`` white pixels: ~50 KB compressed, 400 megapixels
    decoded. Built by hand, row by row, so making it takes milliseconds, not Pillow's seconds."""
    row = b"\x00" + b"\xff" * ((width + 7) // 8)  # filter type 0, then the packed bits
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, greyscale
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")
