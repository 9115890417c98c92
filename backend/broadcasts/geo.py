"""Geometry audiences: insured items whose GPS point lies inside a polygon, and where an item has none, the
townships whose area (``region_area``) the polygon meets. Points are tested with shapely's vectorised
``contains_xy``, once per broadcast; the matches are stored for the set-based resolution.

Township areas come from a staff import (``POST /api/regions/areas``: a GeoJSON FeatureCollection whose
features carry ``properties.code``); a bounding box per area keeps the first cut in SQL."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import shapely
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.broadcasts.errors import BroadcastError
from backend.broadcasts.fanout import MAX_ID, Targeting, _policy_rows, policy
from backend.broadcasts.models import BroadcastGeoPerson, RegionArea
from backend.db import utcnow
from backend.enrollment.models import Application

AREA_TYPES = frozenset({"Polygon", "MultiPolygon"})
MAX_VERTICES = 100_000
GEO_BATCH = 5_000
application = Application.__table__  # type: ignore[attr-defined]
area_t = RegionArea.__table__  # type: ignore[attr-defined]
geo_t = BroadcastGeoPerson.__table__  # type: ignore[attr-defined]


def area_of(geojson: dict[str, Any]) -> BaseGeometry:
    """A GeoJSON Polygon or MultiPolygon as a valid shapely geometry, or a refusal that says why."""
    if not isinstance(geojson, dict) or geojson.get("type") not in AREA_TYPES:
        raise BroadcastError("geometry_type")
    try:
        area = shape(geojson)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError) as error:
        raise BroadcastError("geometry_invalid", reason=str(error)[:80]) from None
    if area.is_empty or shapely.get_num_coordinates(area) > MAX_VERTICES:
        raise BroadcastError("geometry_invalid", reason="empty or too many points")
    minx, miny, maxx, maxy = area.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise BroadcastError("geometry_invalid", reason="coordinates are longitude, latitude")
    return area if area.is_valid else area.buffer(0)  # a self-touching ring: repaired, same area


async def townships_meeting(session: AsyncSession, area: BaseGeometry) -> tuple[str, ...]:
    """The codes of the stored areas the geometry meets: bounding boxes in SQL, then shapely."""
    minx, miny, maxx, maxy = area.bounds
    rows = (
        await session.execute(
            select(area_t.c.region_code, area_t.c.geometry).where(
                area_t.c.min_lon <= maxx,
                area_t.c.max_lon >= minx,
                area_t.c.min_lat <= maxy,
                area_t.c.max_lat >= miny,
            )
        )
    ).all()
    shapely.prepare(area)
    return tuple(sorted(code for code, geometry in rows if area.intersects(shape(geometry))))


def _township(code: str) -> str:
    return code[:9]


async def matching_people(session: AsyncSession, t: Targeting, area: BaseGeometry) -> tuple[int, ...]:
    """People with an individual policy (matching the other filters) whose item's GPS point is inside, or
    who gave no point and whose township's area the geometry meets."""
    others = replace(t, spec=t.spec.model_copy(update={"geometry": None}))
    individual = _policy_rows(others, 0, MAX_ID, t.now or utcnow())[0]
    latitude = application.c.answers["latitude"].as_float()
    longitude = application.c.answers["longitude"].as_float()
    query = individual.add_columns(latitude.label("lat"), longitude.label("lon")).join(
        application, application.c.id == policy.c.application_id
    )
    rows = (await session.execute(query)).all()
    if not rows:
        return ()
    people = np.array([row.person_id for row in rows], dtype=np.int64)
    lat = np.array([row.lat if row.lat is not None else np.nan for row in rows], dtype=float)
    lon = np.array([row.lon if row.lon is not None else np.nan for row in rows], dtype=float)
    has_point = ~(np.isnan(lat) | np.isnan(lon))
    shapely.prepare(area)
    inside = np.zeros(len(rows), dtype=bool)
    inside[has_point] = shapely.contains_xy(area, lon[has_point], lat[has_point])
    townships = {_township(code) for code in t.townships}
    no_point_in_area = np.array(
        [
            not has and _township(row.region_code) in townships
            for row, has in zip(rows, has_point, strict=True)
        ],
        dtype=bool,
    )
    return tuple(sorted({int(p) for p in people[inside | no_point_in_area]}))


async def store_matches(session: AsyncSession, broadcast_id: int, people: Sequence[int]) -> None:
    await session.execute(delete(geo_t).where(geo_t.c.broadcast_id == broadcast_id))
    for start in range(0, len(people), GEO_BATCH):
        rows = [{"broadcast_id": broadcast_id, "person_id": p} for p in people[start : start + GEO_BATCH]]
        await session.execute(geo_t.insert().values(rows))


async def import_areas(
    session: AsyncSession, collection: dict[str, Any], *, allowed: Callable[[str], bool] = lambda code: True
) -> tuple[int, list[dict[str, str]]]:
    """Upsert the features' areas by ``properties.code`` (a 12-digit division code); refused features (a
    bad code or shape, or a region outside ``allowed``) are reported with the reason and the rest imported.
    The caller audits and commits."""
    if not isinstance(collection, dict) or collection.get("type") != "FeatureCollection":
        raise BroadcastError("areas_not_collection")
    features = collection.get("features")
    if not isinstance(features, list) or not features:
        raise BroadcastError("areas_not_collection")
    good: dict[str, dict[str, Any]] = {}
    refused: list[dict[str, str]] = []
    for index, feature in enumerate(features):
        properties = feature.get("properties") if isinstance(feature, dict) else None
        code = str((properties or {}).get("code", ""))
        if not (code.isdigit() and len(code) == 12):
            refused.append({"feature": str(index), "code": code[:20], "reason": "code must be 12 digits"})
            continue
        if not allowed(code):
            refused.append({"feature": str(index), "code": code, "reason": "outside_scope"})
            continue
        try:
            area = area_of(feature.get("geometry"))
        except BroadcastError as error:
            refused.append({"feature": str(index), "code": code, "reason": error.code})
            continue
        minx, miny, maxx, maxy = area.bounds
        good[code] = {
            "region_code": code,
            "geometry": mapping(area),
            "min_lon": minx,
            "min_lat": miny,
            "max_lon": maxx,
            "max_lat": maxy,
            "updated_at": utcnow(),
        }
    codes = sorted(good)
    for start in range(0, len(codes), 1_000):
        batch = codes[start : start + 1_000]
        await session.execute(delete(area_t).where(area_t.c.region_code.in_(batch)))
        await session.execute(area_t.insert().values([good[c] for c in batch]))
    return len(codes), refused
