"""Which chat reaches a person: the one they used last that has not blocked us, bound by a verified phone.
Notices go there first; a person no chat reaches is texted (``backend/outbox/sms``).

``reachable_identity`` answers for one person; ``reachable_identities`` for many in few queries (the
fan-outs: publicity, callbacks, collective lists). Both apply the same rule."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.people.models import ChatIdentity

BATCH = 5_000  # people per query: well inside SQLite's and asyncpg's parameter limits

# The rule: not blocked, the phone proved; the chat used last first.
_REACHES = (col(ChatIdentity.stopped_at).is_(None), col(ChatIdentity.phone_verified_at).is_not(None))
_LATEST_FIRST = (col(ChatIdentity.last_seen_at).desc(), col(ChatIdentity.id).desc())


async def reachable_identity(*, session: AsyncSession, person_id: int) -> ChatIdentity | None:
    query = (
        select(ChatIdentity)
        .where(col(ChatIdentity.person_id) == person_id)
        .where(*_REACHES)
        .order_by(*_LATEST_FIRST)
        .limit(1)
    )
    return (await session.exec(query)).first()


def _in_list(people: Sequence[int]) -> Any:
    return col(ChatIdentity.person_id).in_(people)


async def reachable_identities(
    session: AsyncSession,
    person_ids: Iterable[int],
    *,
    member: Callable[[Sequence[int]], Any] = _in_list,
) -> dict[int, ChatIdentity]:
    """Per person the chat that reaches them, for many people. ``member`` builds the "person is one of
    these" condition for a batch (collective enrollment passes PostgreSQL's ``= ANY(array)``)."""
    people = sorted(set(person_ids))
    found: dict[int, ChatIdentity] = {}
    for start in range(0, len(people), BATCH):
        batch = people[start : start + BATCH]
        query = select(ChatIdentity).where(member(batch)).where(*_REACHES).order_by(*_LATEST_FIRST)
        for identity in (await session.exec(query)).all():
            if identity.person_id is not None:
                found.setdefault(identity.person_id, identity)
    return found
