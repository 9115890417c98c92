"""Recording a claim's steps and telling the insured in chat (staff are told by ``backend.alerts``)."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from backend.chat_actions import claim_button
from backend.claims.models import Claim, ClaimEvent
from backend.db import utcnow
from backend.outbox.models import Priority
from backend.outbox.service import enqueue_for_identity
from backend.people.models import ChatIdentity
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
