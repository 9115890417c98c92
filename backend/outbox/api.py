"""Delivery workers claim and report through these routes; staff can look at the queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from backend.deps import DirectoryDep, SessionDep, SettingsDep, require_roles, require_service
from backend.outbox import service
from backend.outbox.models import OutboxMessage
from backend.outbox.schemas import ClaimIn, OutboxItem, OutboxRow, ResultsIn, ResultsOut
from backend.outbox.sms.service import held_kinds
from backend.security import StaffPrincipal

router = APIRouter(prefix="/api/outbox", tags=["outbox"])


def _item(row: OutboxMessage) -> OutboxItem:
    return OutboxItem.model_validate(row, from_attributes=True)


@router.post("/claim", response_model=list[OutboxItem], dependencies=[Depends(require_service)])
async def claim(body: ClaimIn, session: SessionDep, settings: SettingsDep) -> list[OutboxItem]:
    rows = await service.claim_batch(
        session=session,
        worker_id=body.worker_id,
        limit=body.limit,
        lease_seconds=settings.delivery_lease_seconds,
        channels=body.channels,
        held_sms_kinds=held_kinds(settings),
    )
    return [_item(r) for r in rows]


@router.post("/results", response_model=ResultsOut, dependencies=[Depends(require_service)])
async def results(
    body: ResultsIn, session: SessionDep, settings: SettingsDep, directory: DirectoryDep
) -> ResultsOut:
    updated = await service.record_results(
        session=session,
        directory=directory,
        worker_id=body.worker_id,
        results=body.results,
        max_attempts=settings.delivery_max_attempts,
    )
    return ResultsOut(updated=updated)


@router.get("", response_model=list[OutboxRow])
async def list_outbox(
    _staff: Annotated[StaffPrincipal, Depends(require_roles("admin"))],
    session: SessionDep,
    status: str | None = None,
    address: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[OutboxRow]:
    rows = await service.list_messages(session=session, status=status, address=address, limit=limit)
    return [OutboxRow.model_validate(r, from_attributes=True) for r in rows]


@router.get("/stats", dependencies=[Depends(require_roles("admin"))])
async def stats(session: SessionDep) -> dict[str, int]:
    return await service.status_counts(session=session)
