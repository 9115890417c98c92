"""Region routes (R-ENR-12): the division list, readable by staff and the bot; village imports by staff."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile, status

from backend.deps import ReaderDep, SessionDep, require_roles
from backend.regions import service
from backend.regions.models import Region
from backend.regions.schemas import RegionFound, RegionOut, VillageImportReport
from backend.security import StaffPrincipal
from backend.staff.api import client_ip

router = APIRouter(prefix="/api/regions", tags=["regions"])

VillageImporterDep = Annotated[StaffPrincipal, Depends(require_roles("underwriter", "agent"))]

# A county's villages fit in well under a megabyte; the cap keeps a wrong upload from filling memory.
MAX_IMPORT_BYTES = 10 * 1024 * 1024

# Plain numbers: Starlette renamed the 413/422 constants and the old names now warn.
UNPROCESSABLE = 422
TOO_LARGE = 413

T = TypeVar("T")


async def _lookup(call: Awaitable[T]) -> T:
    """Run a lookup, turning a malformed code into 422 and an unknown one into 404."""
    try:
        return await call
    except service.MalformedCode as exc:
        raise HTTPException(UNPROCESSABLE, str(exc)) from exc
    except service.UnknownRegion as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


def _out(regions: list[Region]) -> list[RegionOut]:
    return [RegionOut.model_validate(region) for region in regions]


@router.get("/search", response_model=list[RegionFound])
async def search_regions(
    _reader: ReaderDep,
    session: SessionDep,
    q: Annotated[str, Query(min_length=1, max_length=50, description="part of the name")],
    under: Annotated[str | None, Query(description="only descendants of this region")] = None,
    level: Annotated[int | None, Query(ge=1, le=5)] = None,
    limit: Annotated[int, Query(ge=1, le=service.SEARCH_MAX_LIMIT)] = 20,
) -> list[RegionFound]:
    found = await _lookup(
        service.search_with_paths(session=session, q=q, under=under, level=level, limit=limit)
    )
    return [
        RegionFound(
            code=region.code,
            name=region.name,
            level=region.level,
            parent_code=region.parent_code,
            path=[a.name for a in ancestors],
            full_name=" ".join([*(a.name for a in ancestors), region.name]),
        )
        for region, ancestors in found
    ]


@router.post("/villages/import", response_model=VillageImportReport)
async def import_villages(
    staff: VillageImporterDep,
    session: SessionDep,
    request: Request,
    file: Annotated[UploadFile, File(description="CSV, UTF-8: code,name[,township_code]")],
    county_code: Annotated[str | None, Form()] = None,
) -> VillageImportReport:
    raw = await file.read(MAX_IMPORT_BYTES + 1)
    if len(raw) > MAX_IMPORT_BYTES:
        raise HTTPException(TOO_LARGE, f"file larger than {MAX_IMPORT_BYTES} bytes")
    try:
        csv_text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "file must be UTF-8 encoded CSV") from exc
    try:
        return await service.import_villages(
            session=session, csv_text=csv_text, county_code=county_code, actor=staff, ip=client_ip(request)
        )
    except service.VillageImportError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc


@router.get("/{code}", response_model=RegionOut)
async def get_region(code: str, _reader: ReaderDep, session: SessionDep) -> RegionOut:
    return RegionOut.model_validate(await _lookup(service.get(session=session, code=code)))


@router.get("/{code}/children", response_model=list[RegionOut])
async def region_children(code: str, _reader: ReaderDep, session: SessionDep) -> list[RegionOut]:
    """``root`` lists the provinces."""
    return _out(await _lookup(service.children(session=session, code=code)))


@router.get("/{code}/path", response_model=list[RegionOut])
async def region_path(code: str, _reader: ReaderDep, session: SessionDep) -> list[RegionOut]:
    """From the province down to the region itself."""
    return _out(await _lookup(service.path(session=session, code=code)))
