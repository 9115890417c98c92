"""Raising, listing and acknowledging staff alerts.

An alert is recorded once per ``dedupe_key`` (whoever raises it twice raises nothing new) and sent to the
staff alert chat when one is configured. Staff see the alerts of their regions; acknowledging is audited.
Nothing here imports another domain: claims (and later the CAP warnings) call in.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.alerts.models import StaffAlert
from backend.db import utcnow
from backend.outbox.models import Priority
from backend.outbox.service import enqueue, enqueue_for_identity
from backend.people.models import ChatIdentity
from backend.refusals import Refusal
from backend.security import StaffPrincipal, significant_prefix
from backend.settings import Settings
from backend.staff.models import AuditLog, Role
from backend.staff.service import record_audit
from messages import render

ALERT_ROLES = (Role.UNDERWRITER.value, Role.ADJUSTER.value, Role.AGENT.value)  # acknowledging an alert


INSURED_MESSAGE = "insured_message"
# Where a message goes when its sender holds no policy or application yet: only national staff see it.
NO_REGION = "000000000000"
MAX_MESSAGE = 1000


class AlertError(Refusal):
    """A refusal with a code: ``not_found`` (also outside the caller's regions), ``forbidden`` (role),
    ``not_a_message`` (a reply to an alert no insured wrote), ``reply_required``."""


async def alert_staff(
    session: AsyncSession,
    settings: Settings,
    *,
    kind: str,
    region_code: str,
    title: str,
    body: str,
    dedupe_key: str,
    claim_id: int | None = None,
    event_id: int | None = None,
    identity_id: int | None = None,
) -> StaffAlert | None:
    """Record an alert once (by its key) and send it to the staff alert chat when one is configured.
    Returns None when the key was raised before. Does not commit."""
    existing = (await session.exec(select(StaffAlert).where(StaffAlert.dedupe_key == dedupe_key))).first()
    if existing is not None:
        return None
    alert = StaffAlert(
        kind=kind,
        region_code=region_code,
        title=title,
        body=body,
        claim_id=claim_id,
        event_id=event_id,
        identity_id=identity_id,
        dedupe_key=dedupe_key,
    )
    session.add(alert)
    if settings.staff_alert_address:
        await enqueue(
            session=session,
            channel=settings.staff_alert_channel,
            address=settings.staff_alert_address,
            text=f"<b>{_escape(title)}</b>\n{_escape(body)}",
            dedupe_key=f"alert-{dedupe_key}",
            priority=Priority.REPLY,
        )
    return alert


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _in_scope(query: Any, actor: StaffPrincipal) -> Any:
    if actor.is_national:
        return query
    prefixes = (significant_prefix(code) for code in actor.region_codes)
    return query.where(or_(*(col(StaffAlert.region_code).startswith(p) for p in prefixes)))


async def list_alerts(
    *,
    session: AsyncSession,
    actor: StaffPrincipal,
    unacknowledged: bool = False,
    kind: str | None = None,
    limit: int = 100,
) -> list[StaffAlert]:
    """Alerts in the actor's region, newest first."""
    query = _in_scope(select(StaffAlert), actor)
    if unacknowledged:
        query = query.where(col(StaffAlert.acknowledged_at).is_(None))
    if kind:
        query = query.where(StaffAlert.kind == kind)
    query = query.order_by(col(StaffAlert.created_at).desc(), col(StaffAlert.id).desc()).limit(limit)
    return list((await session.exec(query)).all())


async def ack_alert(
    *, session: AsyncSession, actor: StaffPrincipal, alert_id: int, ip: str | None = None
) -> StaffAlert:
    """Acknowledge an alert of the actor's regions (audited, idempotent). Commits."""
    alert = await _alert_in_scope(session, actor, alert_id)
    if not _acknowledge(session, alert, actor):
        return alert  # acknowledged already: nothing written
    record_audit(
        session=session,
        actor=actor,
        action="alerts.ack",
        target_type="staff_alert",
        target_id=alert_id,
        detail={"kind": alert.kind, "claim_id": alert.claim_id},
        ip=ip,
    )
    await session.commit()
    await session.refresh(alert)
    return alert


async def leave_message(
    session: AsyncSession,
    settings: Settings,
    *,
    identity_id: int,
    region_code: str | None,
    update_key: str,
    text: str,
) -> StaffAlert | None:
    """An insured's free text that no step of the bot understood ("我家稻子被淹了怎么办") reaches the staff of
    their region as an alert they answer in the same chat. ``update_key`` (the chat update) makes a resend
    after a dropped connection one message. Commits; None when it was recorded before."""
    body = text.strip()[:MAX_MESSAGE]
    locale = settings.default_locale
    alert = await alert_staff(
        session,
        settings,
        kind=INSURED_MESSAGE,
        region_code=region_code or NO_REGION,
        title=render("alerts/insured_message_title", locale, ext="txt"),
        body=body,
        dedupe_key=f"msg-{identity_id}-{update_key}"[:128],
        identity_id=identity_id,
    )
    await session.commit()
    return alert


async def reply_to_message(
    *, session: AsyncSession, actor: StaffPrincipal, alert_id: int, text: str, ip: str | None = None
) -> StaffAlert:
    """Staff answer an insured's message in that person's chat (through the outbox); the alert is then
    acknowledged. Audited; the reply's text is kept in the audit row."""
    reply = text.strip()
    if not reply:
        raise AlertError("reply_required")
    alert = await _alert_in_scope(session, actor, alert_id)
    if alert.kind != INSURED_MESSAGE or alert.identity_id is None:
        raise AlertError("not_a_message", alert_id=alert_id)
    identity = await session.get(ChatIdentity, alert.identity_id)
    if identity is None:
        raise AlertError("not_found", alert_id=alert_id)
    replies = await _count_replies(session, alert_id)
    await enqueue_for_identity(
        session=session,
        identity=identity,
        text=render("alerts/staff_reply", identity.locale, question=alert.body, reply=reply),
        dedupe_key=f"alert-{alert_id}-reply-{replies + 1}",
        priority=Priority.REPLY,
    )
    _acknowledge(session, alert, actor)
    record_audit(
        session=session,
        actor=actor,
        action="alerts.reply",
        target_type="staff_alert",
        target_id=alert_id,
        detail={"identity_id": alert.identity_id, "reply": reply[:MAX_MESSAGE]},
        ip=ip,
    )
    await session.commit()
    await session.refresh(alert)
    return alert


def _acknowledge(session: AsyncSession, alert: StaffAlert, actor: StaffPrincipal) -> bool:
    """Mark the alert seen by ``actor``; False when someone acknowledged it before."""
    if alert.acknowledged_at is not None:
        return False
    alert.acknowledged_by = actor.user_id
    alert.acknowledged_at = utcnow()
    session.add(alert)
    return True


async def _alert_in_scope(session: AsyncSession, actor: StaffPrincipal, alert_id: int) -> StaffAlert:
    if actor.role != Role.ADMIN.value and actor.role not in ALERT_ROLES:
        raise AlertError("forbidden", role=actor.role)
    alert = await session.get(StaffAlert, alert_id)
    if alert is None or not actor.covers_region(alert.region_code):
        raise AlertError("not_found", alert_id=alert_id)
    return alert


async def _count_replies(session: AsyncSession, alert_id: int) -> int:
    query = (
        select(func.count())
        .select_from(AuditLog)
        .where(
            AuditLog.action == "alerts.reply",
            AuditLog.target_type == "staff_alert",
            AuditLog.target_id == str(alert_id),
        )
    )
    return int((await session.exec(query)).one())
