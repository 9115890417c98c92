"""A warning's area as the audience needs it: region codes from geocodes, one geometry from polygons and
circles (pure).

Geocodes accepted as administrative-division codes (GB/T 2260 and the statistical 9/12-digit township and
village codes): the ``valueName`` must say so (we are liberal about how: any name that, ignoring case,
spaces and punctuation, contains one of ``ADCODE``, ``ADMINCODE``, ``ADMINISTRATIVEDIVISION``, ``GB2260``,
``GBT2260``, ``XZQH``, ``REGIONCODE``, ``行政区划``, ``区划代码``), and the value must be 6, 9 or 12 digits. A code
padded with zeros names its whole level: ``440000`` is Guangdong, ``440300`` Shenzhen. Other geocodes (US
SAME/FIPS ``006109``, Canada's CAP-CP, forecast zone names) are kept on the row but match no region: a
six-digit FIPS code would otherwise land in a Chinese county by accident.

Geometry: CAP writes "lat,lon"; shapely and GeoJSON want (x=lon, y=lat), so every point is swapped once
here. A circle becomes a 64-sided polygon around its centre, its radius in km turned into degrees of
latitude and (divided by cos(latitude)) of longitude; a radius of 0 (an epicentre) becomes a disc of
1 km so it is still an area.
"""

from __future__ import annotations

import math
import re
from typing import Any

from shapely.geometry import MultiPolygon, Polygon, mapping
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from backend.alerts.warnings.cap import Area

KM_PER_DEGREE_LAT = 111.32
CIRCLE_SIDES = 64
MIN_RADIUS_KM = 1.0
_ADCODE_NAMES = (
    "ADCODE",
    "ADMINCODE",
    "ADMINISTRATIVEDIVISION",
    "GB2260",
    "GBT2260",
    "XZQH",
    "REGIONCODE",
    "行政区划",
    "区划代码",
)
_NOT_LETTERS = re.compile(r"[\s_\-./:：]+")


def is_adcode_name(value_name: str) -> bool:
    name = _NOT_LETTERS.sub("", value_name).upper()
    return any(token in name for token in _ADCODE_NAMES)


def region_code(value: str) -> str | None:
    """The 12-digit region code of a 6/9/12-digit division code, or None when it is not one."""
    value = value.strip()
    if not value.isdigit() or len(value) not in (6, 9, 12) or set(value) == {"0"}:
        return None
    return value.ljust(12, "0")


def region_codes(areas: list[Area]) -> list[str]:
    """Every administrative-division code the areas name (12 digits, sorted, once each)."""
    codes = {
        code
        for area in areas
        for name, value in area.geocodes
        if is_adcode_name(name) and (code := region_code(value)) is not None
    }
    return sorted(codes)


def circle_polygon(lat: float, lon: float, radius_km: float) -> Polygon:
    radius_km = max(radius_km, MIN_RADIUS_KM)
    d_lat = radius_km / KM_PER_DEGREE_LAT
    # Near the poles a degree of longitude shrinks to nothing; 89° keeps the division finite.
    d_lon = radius_km / (KM_PER_DEGREE_LAT * math.cos(math.radians(min(abs(lat), 89.0))))
    ring = [
        (
            lon + d_lon * math.cos(2 * math.pi * k / CIRCLE_SIDES),
            lat + d_lat * math.sin(2 * math.pi * k / CIRCLE_SIDES),
        )
        for k in range(CIRCLE_SIDES)
    ]
    return Polygon(ring)


def area_geometry(areas: list[Area]) -> BaseGeometry | None:
    """The union of every polygon and circle of the areas (lon/lat), or None when they draw nothing."""
    shapes: list[BaseGeometry] = []
    for area in areas:
        for points in area.polygons:
            polygon = Polygon([(lon, lat) for lat, lon in points])
            # A self-crossing ring (drawn by hand) still means the area it encloses: buffer(0) repairs it.
            shapes.append(polygon if polygon.is_valid else polygon.buffer(0))
        shapes.extend(circle_polygon(lat, lon, radius) for lat, lon, radius in area.circles)
    shapes = [shape for shape in shapes if not shape.is_empty]
    if not shapes:
        return None
    return unary_union(shapes)


def geojson(geometry: BaseGeometry | None) -> dict[str, Any] | None:
    """GeoJSON Polygon or MultiPolygon (what the broadcast audience takes), or None."""
    if geometry is None or geometry.is_empty:
        return None
    if not isinstance(geometry, Polygon | MultiPolygon):
        polygons = [g for g in getattr(geometry, "geoms", []) if isinstance(g, Polygon)]
        if not polygons:
            return None
        geometry = MultiPolygon(polygons)
    return dict(mapping(geometry))
