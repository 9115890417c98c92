"""Raising, listing and acknowledging staff alerts.

An alert is recorded once per ``dedupe_key`` (whoever raises it twice raises nothing new) and sent to the
staff alert chat when one is configured. Staff see the alerts of their regions; acknowledging is audited.
Nothing here imports another domain: claims (and later the CAP warnings) call in.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.alerts.models import StaffAlert
from backend.db import utcnow
from backend.outbox.models import Priority
from backend.outbox.service import enqueue
from backend.security import StaffPrincipal, significant_prefix
from backend.settings import Settings
from backend.staff.models import Role
from backend.staff.service import record_audit

ALERT_ROLES = (Role.UNDERWRITER.value, Role.ADJUSTER.value, Role.AGENT.value)  # acknowledging an alert


class AlertError(Exception):
    """A refusal with a code: ``not_found`` (also outside the caller's regions), ``forbidden`` (role)."""

    def __init__(self, code: str, **detail: object) -> None:
        super().__init__(code)
        self.code = code
        self.detail = {k: str(v) for k, v in detail.items()}


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
    if actor.role != Role.ADMIN.value and actor.role not in ALERT_ROLES:
        raise AlertError("forbidden", role=actor.role)
    alert = await session.get(StaffAlert, alert_id)
    if alert is None or not actor.covers_region(alert.region_code):
        raise AlertError("not_found", alert_id=alert_id)
    if alert.acknowledged_at is not None:
        return alert  # acknowledged already: nothing written
    alert.acknowledged_by = actor.user_id
    alert.acknowledged_at = utcnow()
    session.add(alert)
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
