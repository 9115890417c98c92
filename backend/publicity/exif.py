"""What a notice-board photo says about itself (R-PUB-3: the time and place of the publicity): the
capture time and GPS position from its EXIF data, where the camera wrote them."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PIL import ExifTags, Image

DATETIME_ORIGINAL = 0x9003
DATETIME = 0x0132
GPS_LAT_REF, GPS_LAT, GPS_LON_REF, GPS_LON = 1, 2, 3, 4


@dataclass(frozen=True)
class PhotoFacts:
    taken_at: str | None  # the camera's local time as written, ISO 8601 without a zone
    gps: dict[str, float] | None  # {"lat": 22.97, "lon": 113.75}


def _degrees(value: Any, ref: Any) -> float | None:
    try:
        degrees, minutes, seconds = (float(part) for part in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    result = degrees + minutes / 60 + seconds / 3600
    return round(-result if str(ref).upper() in ("S", "W") else result, 6)


def _taken_at(exif: Image.Exif) -> str | None:
    raw = exif.get_ifd(ExifTags.IFD.Exif).get(DATETIME_ORIGINAL) or exif.get(DATETIME)
    try:
        return datetime.strptime(str(raw).strip("\x00 "), "%Y:%m:%d %H:%M:%S").isoformat() if raw else None
    except ValueError:
        return None


def _gps(exif: Image.Exif) -> dict[str, float] | None:
    info = exif.get_ifd(ExifTags.IFD.GPSInfo)
    if not info:
        return None
    lat = _degrees(info.get(GPS_LAT), info.get(GPS_LAT_REF))
    lon = _degrees(info.get(GPS_LON), info.get(GPS_LON_REF))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return {"lat": lat, "lon": lon}


def photo_facts(data: bytes) -> PhotoFacts:
    """Read only the EXIF block (the photo was already decoded whole by ``backend.images``)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            exif = image.getexif()
            return PhotoFacts(taken_at=_taken_at(exif), gps=_gps(exif))
    except (OSError, ValueError, SyntaxError, KeyError, TypeError):
        return PhotoFacts(taken_at=None, gps=None)
