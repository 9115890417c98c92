"""Which chat reaches a person: the one they used last that has not blocked us, bound by a verified phone.
Notices go there first; a person no chat reaches is texted (``backend/outbox/sms``)."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.people.models import ChatIdentity


async def reachable_identity(*, session: AsyncSession, person_id: int) -> ChatIdentity | None:
    query = (
        select(ChatIdentity)
        .where(col(ChatIdentity.person_id) == person_id)
        .where(col(ChatIdentity.stopped_at).is_(None), col(ChatIdentity.phone_verified_at).is_not(None))
        .order_by(col(ChatIdentity.last_seen_at).desc(), col(ChatIdentity.id).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()
