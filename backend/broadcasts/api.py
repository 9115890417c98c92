"""Broadcast routes: staff (``/api/broadcasts``: compose, count, preview, four eyes, send, pause, resume,
cancel, resend, progress; region-scoped, writes audited), the township areas import
(``/api/regions/areas``) and the bot (``/api/bot/broadcasts``: the "收到" tap, and a text's link)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, status

from backend.broadcasts import geo, service
from backend.broadcasts.errors import BroadcastError
from backend.broadcasts.schemas import (
    AckOut,
    AreaImportOut,
    AudienceIn,
    AudienceSizeOut,
    BroadcastChatOut,
    BroadcastContent,
    BroadcastIn,
    BroadcastOut,
    PreviewIn,
    PreviewOut,
    ProgressOut,
    ResendOut,
    ScheduleIn,
)
from backend.db import utcnow
from backend.deps import BotDep, SessionDep, SettingsDep, StaffDep, require_roles
from backend.ids import Id
from backend.security import StaffPrincipal
from backend.staff.api import client_ip
from backend.staff.service import record_audit
from messages import normalize_locale

router = APIRouter(prefix="/api/broadcasts", tags=["broadcasts"])
areas_router = APIRouter(prefix="/api/regions", tags=["regions"])
bot_router = APIRouter(prefix="/api/bot/broadcasts", tags=["bot: broadcasts"])

Writer = Annotated[StaffPrincipal, Depends(require_roles("underwriter", "adjuster", "agent"))]
Approver = Annotated[StaffPrincipal, Depends(require_roles("underwriter", "adjuster"))]
Status = Literal["draft", "awaiting_approval", "approved", "sending", "paused", "done", "cancelled"]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "outside the staff member's regions, or the creator approving"},
    404: {"description": "no such broadcast"},
    422: {"description": "refused: wrong status, empty audience, bad content or area"},
}


@router.post("/audience-size", response_model=AudienceSizeOut, responses=ERRORS)
async def audience_size(
    body: AudienceIn, staff: StaffDep, session: SessionDep, settings: SettingsDep
) -> AudienceSizeOut:
    """How many people it would reach (each once, inside the caller's regions); nothing is written."""
    people = await service.audience_size(session, audience=body.audience, actor=staff)
    threshold = settings.broadcast_approval_threshold
    return AudienceSizeOut(people=people, threshold=threshold, needs_approval=people > threshold)


@router.post("/preview", response_model=PreviewOut, responses=ERRORS)
async def preview(body: PreviewIn, staff: StaffDep, session: SessionDep) -> PreviewOut:
    """The chat and SMS texts a sample recipient insuring ``subjects`` reads, in zh-CN and en."""
    texts = await service.preview_for(
        session, kind=body.kind, content=body.content, subjects=body.subjects, ack_button=body.ack_button
    )
    return PreviewOut(texts=texts)


@router.post("", response_model=BroadcastOut, status_code=status.HTTP_201_CREATED, responses=ERRORS)
async def create(body: BroadcastIn, staff: Writer, session: SessionDep, request: Request) -> BroadcastOut:
    """A draft from free text or templates; its audience is clipped to the creator's regions."""
    if body.send_at is not None and body.send_at <= utcnow():
        raise BroadcastError("send_at_past")
    broadcast = await service.create_broadcast(
        session,
        kind=body.kind,
        content=body.content,
        audience=body.audience,
        actor=staff,
        send_at=body.send_at,
        ack_button=body.ack_button,
        ip=client_ip(request),
    )
    return service.broadcast_out(broadcast)


@router.get("", response_model=list[BroadcastOut])
async def list_broadcasts(
    staff: StaffDep,
    session: SessionDep,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[BroadcastOut]:
    rows = await service.list_broadcasts(session, actor=staff, status=status_, limit=limit, offset=offset)
    return [service.broadcast_out(b) for b in rows]


@router.get("/{broadcast_id}", response_model=BroadcastOut, responses=ERRORS)
async def get_one(broadcast_id: Id, staff: StaffDep, session: SessionDep) -> BroadcastOut:
    return service.broadcast_out(await service.get_broadcast(session, broadcast_id=broadcast_id, actor=staff))


@router.post("/{broadcast_id}/submit", response_model=BroadcastOut, responses=ERRORS)
async def submit(
    broadcast_id: Id, staff: Writer, session: SessionDep, settings: SettingsDep, request: Request
) -> BroadcastOut:
    """Count the audience: above the threshold it waits for a second staff member (four eyes)."""
    broadcast = await service.submit_broadcast(
        session, broadcast_id=broadcast_id, actor=staff, settings=settings, ip=client_ip(request)
    )
    return service.broadcast_out(broadcast)


@router.post("/{broadcast_id}/approve", response_model=BroadcastOut, responses=ERRORS)
async def approve(broadcast_id: Id, staff: Approver, session: SessionDep, request: Request) -> BroadcastOut:
    broadcast = await service.approve_broadcast(
        session, broadcast_id=broadcast_id, actor=staff, ip=client_ip(request)
    )
    return service.broadcast_out(broadcast)


@router.post("/{broadcast_id}/send", response_model=BroadcastOut, responses=ERRORS)
async def send(
    broadcast_id: Id,
    staff: Writer,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    body: Annotated[ScheduleIn | None, Body()] = None,
) -> BroadcastOut:
    """Send now, or at ``send_at`` (the scheduler starts it then)."""
    ip = client_ip(request)
    if body is not None and body.send_at is not None:
        if body.send_at <= utcnow():
            raise BroadcastError("send_at_past")
        broadcast = await service.schedule_broadcast(
            session, broadcast_id=broadcast_id, actor=staff, send_at=body.send_at, ip=ip
        )
    else:
        broadcast = await service.start_broadcast(
            session, broadcast_id=broadcast_id, actor=staff, settings=settings, ip=ip
        )
    return service.broadcast_out(broadcast)


@router.post("/{broadcast_id}/pause", response_model=BroadcastOut, responses=ERRORS)
async def pause(broadcast_id: Id, staff: Writer, session: SessionDep, request: Request) -> BroadcastOut:
    broadcast = await service.pause_broadcast(
        session, broadcast_id=broadcast_id, actor=staff, ip=client_ip(request)
    )
    return service.broadcast_out(broadcast)


@router.post("/{broadcast_id}/resume", response_model=BroadcastOut, responses=ERRORS)
async def resume(
    broadcast_id: Id, staff: Writer, session: SessionDep, settings: SettingsDep, request: Request
) -> BroadcastOut:
    broadcast = await service.resume_broadcast(
        session, broadcast_id=broadcast_id, actor=staff, settings=settings, ip=client_ip(request)
    )
    return service.broadcast_out(broadcast)


@router.post("/{broadcast_id}/cancel", response_model=BroadcastOut, responses=ERRORS)
async def cancel(broadcast_id: Id, staff: Writer, session: SessionDep, request: Request) -> BroadcastOut:
    broadcast = await service.cancel_broadcast(
        session, broadcast_id=broadcast_id, actor=staff, ip=client_ip(request)
    )
    return service.broadcast_out(broadcast)


@router.post("/{broadcast_id}/resend-failed", response_model=ResendOut, responses=ERRORS)
async def resend(broadcast_id: Id, staff: Writer, session: SessionDep, request: Request) -> ResendOut:
    """Queue again the messages whose retries are spent."""
    count = await service.resend_failed(
        session, broadcast_id=broadcast_id, actor=staff, ip=client_ip(request)
    )
    return ResendOut(requeued=count)


@router.get("/{broadcast_id}/progress", response_model=ProgressOut, responses=ERRORS)
async def progress(broadcast_id: Id, staff: StaffDep, session: SessionDep) -> ProgressOut:
    """Queued, sent, delivered, failed (reasons), stopped, rate over the last minute, estimated finish,
    acknowledgements per township."""
    return await service.progress(session, broadcast_id=broadcast_id, actor=staff)


# --- township areas --------------------------------------------------------------------------------------

AreaWriter = Annotated[StaffPrincipal, Depends(require_roles("underwriter"))]


@areas_router.post("/areas", response_model=AreaImportOut, responses=ERRORS)
async def import_areas(
    staff: AreaWriter,
    session: SessionDep,
    request: Request,
    body: Annotated[
        dict[str, Any], Body(description="GeoJSON FeatureCollection, properties.code per feature")
    ],
) -> AreaImportOut:
    """Township areas (or any division's) for geometry audiences; staff import only inside their regions."""
    imported, refused = await geo.import_areas(session, body, allowed=staff.covers_region)
    record_audit(
        session=session,
        actor=staff,
        action="region_area.import",
        target_type="region_area",
        detail={"imported": imported, "refused": len(refused)},
        ip=client_ip(request),
    )
    await session.commit()
    return AreaImportOut(accepted=imported, rejected=refused)


# --- the bot ---------------------------------------------------------------------------------------------

BOT_ERRORS: dict[int | str, dict[str, Any]] = {403: {"description": "not sent to this chat's person"}}


@bot_router.post("/{broadcast_id}/ack", response_model=AckOut, responses=BOT_ERRORS)
async def ack(broadcast_id: Id, bot: BotDep, session: SessionDep) -> AckOut:
    """The "收到" tap: recorded once per recipient; a tap from anyone else is refused."""
    acked_at, first = await service.acknowledge(session, broadcast_id=broadcast_id, principal=bot)
    return AckOut(broadcast_id=broadcast_id, acked_at=acked_at, first=first)


@bot_router.get("/{broadcast_id}", response_model=BroadcastChatOut, responses=BOT_ERRORS)
async def chat_view(
    broadcast_id: Id, bot: BotDep, session: SessionDep, locale: Annotated[str, Query(max_length=10)] = "zh-CN"
) -> BroadcastChatOut:
    """What the broadcast said to this chat's person (a text's short link opens it here)."""
    text, buttons = await service.chat_view(
        session, broadcast_id=broadcast_id, principal=bot, locale=normalize_locale(locale)
    )
    return BroadcastChatOut(broadcast_id=broadcast_id, text=text, buttons=buttons)


__all__ = ["BroadcastContent", "areas_router", "bot_router", "router"]
