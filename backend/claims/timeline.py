"""Recording a claim's steps and telling the people concerned: the insured in chat, staff by alert."""

from __future__ import annotations

from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.chat_actions import claim_button
from backend.claims.models import Claim, ClaimEvent, StaffAlert
from backend.db import utcnow
from backend.outbox.models import Priority
from backend.outbox.service import enqueue, enqueue_for_identity
from backend.people.models import ChatIdentity
from backend.settings import Settings
from messages import render


def record(
    session: AsyncSession, claim: Claim, kind: str, *, note: str = "", actor: str = "", **data: Any
) -> ClaimEvent:
    """Add one timeline entry in the caller's transaction."""
    event = ClaimEvent(claim_id=claim.id or 0, kind=kind, note=note, actor=actor, data=data)
    session.add(event)
    claim.updated_at = utcnow()
    return event


async def tell_insured(
    session: AsyncSession,
    claim: Claim,
    template: str,
    *,
    dedupe: str,
    buttons: list[list[dict[str, str]]] | None = None,
    attachments: list[dict[str, Any]] | None = None,
    **ctx: Any,
) -> None:
    """Push ``claims_notice/<template>`` to the reporter's chat, in their language (every status change)."""
    if claim.identity_id is None:
        return
    identity = await session.get(ChatIdentity, claim.identity_id)
    if identity is None or identity.stopped_at is not None:
        return
    view = [
        {
            "text": render("claims_notice/view_button", identity.locale, ext="txt"),
            "callback_data": claim_button("view", claim.id),
        }
    ]
    await enqueue_for_identity(
        session=session,
        identity=identity,
        dedupe_key=f"claim-{claim.id}-{dedupe}",
        priority=Priority.NOTICE,
        text=render(f"claims_notice/{template}", identity.locale, claim=claim, **ctx),
        buttons=[*(buttons or []), view],
        attachments=attachments,
    )


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
    """Record an alert once (by its key) and send it to the staff alert chat when one is configured."""
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
