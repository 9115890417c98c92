"""Uploaded photos are opened whole with Pillow before anything keeps them.

The old check looked at the first bytes only (``BM`` let any text through) or trusted the client's
``Content-Type``. Now an image must be one of the accepted formats, pass Pillow's structural check
(``verify()``: chunk CRCs, markers) and decode completely (``load()``: a truncated JPEG fails here),
and stay under a pixel limit checked from the header, before a single pixel is decoded: a
20,000 x 20,000 one-bit PNG is a few kilobytes compressed and 400 million pixels decoded.

What is kept is the original bytes, once verified, not a re-encoding: a claim's photo is evidence,
recorded with its SHA-256, and its EXIF (time, GPS of the scene) must reach the adjuster unchanged.

Pure (no database, no HTTP): the web chat checks with it before storing, the API before storing again.
Decoding a large photo takes a few hundred milliseconds of CPU: async code awaits :func:`checked_image`,
which decodes in this module's own thread.
"""

from __future__ import annotations

import asyncio
import functools
import io
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from backend.refusals import Refusal

# Pillow format name -> the content type stored and served with the file.
IMAGE_FORMATS: dict[str, str] = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
}
# Every door takes the same photos: the web chat's page offered all five, and the API, which stores
# what the chat passes on, must not refuse what the chat accepted.
ACCEPTED_FORMATS = frozenset(IMAGE_FORMATS)
DEFAULT_MAX_PIXELS = 40_000_000
# Decoding runs here, one photo at a time per process: a 40-megapixel decode takes a few hundred
# milliseconds of CPU, and ten at once would starve every request on a two-core machine. One thread
# also lets each check turn Pillow's bomb warning into an error with ``warnings.catch_warnings()``,
# which swaps the process-wide filter list: two checks in two threads would restore each other's.
_DECODER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="image-check")


# ISO base media files are boxes; the "ftyp" box names the brand. Only these are videos: HEIC, AVIF and
# M4A share the container but are not.
_QUICKTIME_BRANDS = frozenset({b"qt  "})
_MP4_BRANDS = frozenset(
    {
        b"isom",
        b"iso2",
        b"iso4",
        b"iso5",
        b"iso6",
        b"mp41",
        b"mp42",
        b"avc1",
        b"M4V ",
        b"3gp4",
        b"3gp5",
        b"dash",
    }
)


def video_type_of(data: bytes) -> str | None:
    """``video/mp4`` or ``video/quicktime`` for an MP4/MOV file, else None (claims take videos too)."""
    if data[4:8] != b"ftyp":
        return None
    brand = data[8:12]
    if brand in _QUICKTIME_BRANDS:
        return "video/quicktime"
    return "video/mp4" if brand in _MP4_BRANDS else None


class ImageRefused(Refusal):
    """``not_an_image`` (not one of the formats, broken, truncated) or ``image_too_many_pixels``."""


@dataclass(frozen=True)
class VerifiedImage:
    format: str
    content_type: str
    width: int
    height: int


async def checked_image(
    data: bytes, *, formats: frozenset[str] = ACCEPTED_FORMATS, max_pixels: int = DEFAULT_MAX_PIXELS
) -> VerifiedImage:
    """:func:`verified_image` off the event loop, in the one decoding thread."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        _DECODER, functools.partial(verified_image, data, formats=formats, max_pixels=max_pixels)
    )


def verified_image(
    data: bytes, *, formats: frozenset[str] = ACCEPTED_FORMATS, max_pixels: int = DEFAULT_MAX_PIXELS
) -> VerifiedImage:
    """What the bytes are, once Pillow has checked and decoded them; :class:`ImageRefused` otherwise.
    The limit is never above Pillow's own ``MAX_IMAGE_PIXELS``; past it, Pillow's warning is an error."""
    limit = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _verify(data, formats, limit)
    except ImageRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # Pillow's own guard
        raise ImageRefused("image_too_many_pixels", max_megapixels=limit // 1_000_000) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        # Pillow reports a broken file as any of these (SyntaxError for a bad PNG chunk, OSError for a
        # truncated JPEG, EOFError for a cut GIF).
        raise ImageRefused("not_an_image") from exc


def _verify(data: bytes, formats: frozenset[str], max_pixels: int) -> VerifiedImage:
    # Only the formats we take are tried: Pillow would otherwise guess among dozens (EPS, PSD, ...).
    allowed = [name for name in formats if name in IMAGE_FORMATS]
    with Image.open(io.BytesIO(data), formats=allowed) as probe:
        kind, (width, height) = probe.format or "", probe.size
        _check_size(width, height, max_pixels)
        probe.verify()
    # verify() leaves the image unusable: open again and decode every pixel.
    with Image.open(io.BytesIO(data), formats=allowed) as image:
        image.load()
    if kind not in formats:
        raise ImageRefused("not_an_image")
    return VerifiedImage(kind, IMAGE_FORMATS[kind], width, height)


def _check_size(width: int, height: int, max_pixels: int) -> None:
    """Refused from the header alone, before decoding: the size is what a bomb lies about least."""
    if width <= 0 or height <= 0:
        raise ImageRefused("not_an_image")
    if width * height > max_pixels:
        raise ImageRefused("image_too_many_pixels", max_megapixels=max_pixels // 1_000_000)
