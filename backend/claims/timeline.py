"""Recording a claim's steps and telling the insured in chat (staff are told by ``backend.alerts``)."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from backend.chat_actions import claim_button
from backend.claims.insured import insured_of
from backend.claims.models import Claim, ClaimEvent
from backend.db import utcnow
from backend.outbox.models import Priority
from backend.outbox.service import enqueue_for_identity
from backend.outbox.sms.service import notify_person
from backend.people.models import ChatIdentity
from backend.settings import get_settings
from messages import label, normalize_locale, render


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
    """Push ``claims_notice/<template>`` to the reporter's chat, in their language (every status change).
    When that chat is gone (blocked, or the claim was reported for the insured by an agent) the insured's
    own chat that reaches them gets it (a household's own, on a collective policy); with none, a text with
    a link that opens the claim."""
    reporter = await session.get(ChatIdentity, claim.identity_id) if claim.identity_id is not None else None
    insured = await insured_of(session, claim)  # on a collective policy, the household's own person
    dedupe_key = f"claim-{claim.id}-{dedupe}"

    async def in_chat(identity: ChatIdentity) -> None:
        view = [
            {
                "text": render("claims_notice/view_button", identity.locale, ext="txt"),
                "callback_data": claim_button("view", claim.id),
            }
        ]
        await enqueue_for_identity(
            session=session,
            identity=identity,
            dedupe_key=dedupe_key,
            priority=Priority.NOTICE,
            text=render(f"claims_notice/{template}", identity.locale, claim=claim, **ctx),
            buttons=[*(buttons or []), view],
            attachments=attachments,
        )

    locale = normalize_locale(reporter.locale if reporter is not None else None)
    await notify_person(
        session=session,
        person_id=insured.person_id,
        preferred=reporter,
        chat=in_chat,
        sms_key="claim_update",
        sms_values={"claim": claim.number, "status": label(f"sms.claim_{template}", locale)},
        target=f"claim:{claim.id}",
        dedupe_key=dedupe_key,
        link_days=get_settings().sms_link_days,
    )
