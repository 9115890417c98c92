"""R-CLM-5 disaster events: staff open events, link claims, and see whether an event is a catastrophe."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from backend.claims.catastrophe import service as catastrophe
from backend.claims.catastrophe.models import DisasterEvent
from backend.claims.catastrophe.schemas import (
    CountyOut,
    EventDetailOut,
    EventIn,
    EventOut,
    LinkedClaimOut,
    LinkIn,
    SplitIn,
)
from backend.claims.models import Claim
from backend.deps import SessionDep, SettingsDep, StaffDep, require_roles
from backend.ids import Id
from backend.products.pricing import fen_to_yuan
from backend.security import StaffPrincipal
from backend.staff.api import client_ip

router = APIRouter(prefix="/api/events", tags=["claims: disaster events"])

EventManager = Annotated[StaffPrincipal, Depends(require_roles("adjuster", "underwriter"))]
UNPROCESSABLE = 422


def event_out(event: DisasterEvent) -> EventOut:
    return EventOut(
        id=event.id or 0,
        name=event.name,
        cause=event.cause,
        started_on=event.started_on,
        ended_on=event.ended_on,
        status=event.status,
        region_code=event.region_code,
        confirmed_by=event.confirmed_by,
        confirmed_at=event.confirmed_at,
        catastrophe=event.catastrophe,
        catastrophe_reasons=list(event.catastrophe_reasons),
        raised_at=event.raised_at,
        created_at=event.created_at,
    )


def _claim_out(claim: Claim) -> LinkedClaimOut:
    return LinkedClaimOut(
        id=claim.id or 0,
        number=claim.number,
        kind=claim.kind,
        status=claim.status,
        product_code=claim.product_code,
        region_code=claim.region_code,
        county_code=claim.county_code,
        insured_name=claim.insured_name,
        cause=claim.cause,
        loss_started_at=claim.loss_started_at,
        estimated_amount_fen=claim.estimated_amount_fen,
    )


async def _detail(
    session: SessionDep, staff: StaffPrincipal, event: DisasterEvent, reasons: list[str] | None = None
) -> EventDetailOut:
    summary = await catastrophe.event_summary(session, staff, event)
    return EventDetailOut(
        **event_out(event).model_dump(),
        county_count=summary.county_count,
        claim_count=summary.claim_count,
        counties=[
            CountyOut(
                county_code=t.county_code,
                claims=t.claims,
                crop_fen=t.crop_fen,
                crop_yuan=fen_to_yuan(t.crop_fen),
                livestock_fen=t.livestock_fen,
                livestock_yuan=fen_to_yuan(t.livestock_fen),
                crop_threshold_reached=t.crop_reached,
                livestock_threshold_reached=t.livestock_reached,
            )
            for t in summary.counties
        ],
        claims=[_claim_out(c) for c in summary.claims],
        reasons_now=reasons,
    )


@router.post("", response_model=EventOut, status_code=201)
async def create_event(body: EventIn, staff: EventManager, session: SessionDep, request: Request) -> EventOut:
    event = await catastrophe.create_event(
        session,
        staff,
        name=body.name,
        cause=body.cause,
        started_on=body.started_on,
        region_code=body.region_code,
        ip=client_ip(request),
    )
    await session.commit()
    return event_out(event)


@router.get("", response_model=list[EventOut])
async def list_events(
    staff: StaffDep,
    session: SessionDep,
    catastrophe_only: Annotated[bool | None, Query(alias="catastrophe")] = None,
    event_status: Annotated[Literal["candidate", "confirmed"] | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[EventOut]:
    """Events with a claim in the caller's regions, and events with no claims yet; ``status=candidate``
    lists the events grouped automatically that staff have still to confirm or split."""
    events = await catastrophe.list_events(
        session, staff, catastrophe=catastrophe_only, status=event_status, limit=limit
    )
    return [event_out(e) for e in events]


@router.get("/{event_id}", response_model=EventDetailOut)
async def get_event(event_id: Id, staff: StaffDep, session: SessionDep) -> EventDetailOut:
    event = await catastrophe.visible_event(session, staff, event_id)
    return await _detail(session, staff, event)


@router.post("/{event_id}/claims", response_model=EventDetailOut)
async def link_claims(
    event_id: Id,
    body: LinkIn,
    staff: EventManager,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> EventDetailOut:
    event, reasons = await catastrophe.link_claims(
        session, settings, staff, event_id, body.claim_ids, ip=client_ip(request)
    )
    await session.commit()
    return await _detail(session, staff, event, reasons)


@router.post("/{event_id}/confirm", response_model=EventDetailOut)
async def confirm(event_id: Id, staff: EventManager, session: SessionDep, request: Request) -> EventDetailOut:
    """R-CLM-5: a candidate grouped automatically is one disaster (audited)."""
    event = await catastrophe.confirm_event(session, staff, event_id, ip=client_ip(request))
    await session.commit()
    return await _detail(session, staff, event)


@router.post("/{event_id}/split", response_model=EventDetailOut)
async def split(
    event_id: Id,
    body: SplitIn,
    staff: EventManager,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> EventDetailOut:
    """R-CLM-5: the listed claims are another disaster: they move to a new confirmed event, returned here."""
    _event, other = await catastrophe.split_event(
        session, settings, staff, event_id, body.claim_ids, name=body.name, ip=client_ip(request)
    )
    await session.commit()
    return await _detail(session, staff, other)


@router.post("/{event_id}/evaluate", response_model=EventDetailOut)
async def evaluate(
    event_id: Id, staff: EventManager, session: SessionDep, settings: SettingsDep, request: Request
) -> EventDetailOut:
    event, reasons = await catastrophe.evaluate_by_staff(
        session, settings, staff, event_id, ip=client_ip(request)
    )
    await session.commit()
    return await _detail(session, staff, event, reasons)
