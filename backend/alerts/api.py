"""Staff alert routes: the alerts of the caller's regions, and acknowledging one (audited)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy import or_
from sqlmodel import col, select

from backend.alerts import service
from backend.alerts.models import StaffAlert
from backend.alerts.schemas import AlertOut, MessageIn, MessageOut, ReplyIn
from backend.deps import BotDep, SessionDep, SettingsDep, StaffDep, require_roles
from backend.enrollment.models import Application, Policy
from backend.ids import Id
from backend.security import BotPrincipal, StaffPrincipal
from backend.staff.api import client_ip

router = APIRouter(prefix="/api/alerts", tags=["alerts"])
bot_router = APIRouter(prefix="/api/bot/messages", tags=["bot: messages to staff"])

AlertHandler = Annotated[StaffPrincipal, Depends(require_roles(*service.ALERT_ROLES))]


def alert_out(alert: StaffAlert) -> AlertOut:
    return AlertOut(
        id=alert.id or 0,
        kind=alert.kind,
        region_code=alert.region_code,
        title=alert.title,
        body=alert.body,
        claim_id=alert.claim_id,
        event_id=alert.event_id,
        identity_id=alert.identity_id,
        created_at=alert.created_at,
        acknowledged_by=alert.acknowledged_by,
        acknowledged_at=alert.acknowledged_at,
    )


@router.get("", response_model=list[AlertOut])
async def list_alerts(
    staff: StaffDep, session: SessionDep, unacknowledged: bool = False, kind: str | None = None
) -> list[AlertOut]:
    alerts = await service.list_alerts(session=session, actor=staff, unacknowledged=unacknowledged, kind=kind)
    return [alert_out(a) for a in alerts]


@router.post("/{alert_id}/ack", response_model=AlertOut)
async def ack_alert(alert_id: Id, staff: AlertHandler, session: SessionDep, request: Request) -> AlertOut:
    alert = await service.ack_alert(session=session, actor=staff, alert_id=alert_id, ip=client_ip(request))
    return alert_out(alert)


@router.post("/{alert_id}/reply", response_model=AlertOut)
async def reply(
    alert_id: Id, body: ReplyIn, staff: AlertHandler, session: SessionDep, request: Request
) -> AlertOut:
    """Answer an insured's message (kind ``insured_message``) in their chat; audited, acknowledges it."""
    alert = await service.reply_to_message(
        session=session, actor=staff, alert_id=alert_id, text=body.text, ip=client_ip(request)
    )
    return alert_out(alert)


@bot_router.post("", response_model=MessageOut)
async def leave_message(
    body: MessageIn, principal: BotDep, session: SessionDep, settings: SettingsDep
) -> MessageOut:
    """The insured's free text for staff, placed in the region of their latest policy or application."""
    alert = await service.leave_message(
        session,
        settings,
        identity_id=principal.identity_id,
        region_code=await _region_of(session, principal),
        update_key=body.update_key,
        text=body.text,
    )
    return MessageOut(recorded=alert is not None)


async def _region_of(session: SessionDep, principal: BotPrincipal) -> str | None:
    """The region of the sender's latest policy, else of their latest application (none: national)."""
    for table in (Policy, Application):
        owners = [col(table.identity_id) == principal.identity_id]
        if principal.person_id is not None:
            owners.append(col(table.person_id) == principal.person_id)
        query = select(table.region_code).where(or_(*owners)).order_by(col(table.id).desc()).limit(1)
        region = (await session.exec(query)).first()
        if region:
            return region
    return None
