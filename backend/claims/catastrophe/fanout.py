"""Telling the insured of an area (R-DIS-4 green channel, R-DIS-5 branch closure), set-based.

The people are the holders of policies in force in the regions (by significant prefix); each gets one
message: the chat that reaches them (``people/reach.py``'s rule), else a text to their phone. One query for
the people, one for their chats, one for the phones, and multi-row INSERTs of ``BATCH`` rows, never one
statement per person. The outbox's dedupe key makes a second call for the same source send nothing new.

This is the fallback the brief allows while the broadcasts domain is not on this branch; when it is, these
notices become ``send_system_broadcast`` calls with the same ``source_key``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.db import utcnow
from backend.enrollment.models import Policy
from backend.outbox.models import Priority
from backend.outbox.service import enqueue_many
from backend.outbox.sms.service import enqueue_sms_rows, sms_row
from backend.people.models import Person
from backend.people.reach import reachable_identities
from backend.security import significant_prefix
from messages import normalize_locale, render

BATCH = 1_000  # rows per INSERT: well inside the drivers' bound-parameter limits
ACTIVE = "active"


async def insured_in(session: AsyncSession, region_codes: Sequence[str]) -> list[int]:
    """The people holding a policy in force in the regions (an empty prefix is the whole country)."""
    prefixes = sorted({significant_prefix(code) for code in region_codes})
    if not prefixes:
        return []
    query = select(Policy.person_id).where(
        col(Policy.status) == ACTIVE,
        col(Policy.ends_at) > utcnow(),
        col(Policy.person_id).is_not(None),
    )
    if "" not in prefixes:
        query = query.where(or_(*(col(Policy.region_code).startswith(p, autoescape=True) for p in prefixes)))
    return sorted({int(p) for p in (await session.exec(query.distinct())).all() if p is not None})


def _batches(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]


async def tell_insured_in(
    session: AsyncSession,
    *,
    region_codes: Sequence[str],
    template: str,
    sms_key: str,
    dedupe_key: str,
    context: dict[str, Any],
    default_locale: str,
) -> int:
    """Tell everyone insured in the regions (chat, else SMS); returns how many people were reached."""
    people = await insured_in(session, region_codes)
    chats = await reachable_identities(session, people)
    chat_rows = [
        {
            "channel": identity.channel,
            "address": identity.address,
            "identity_id": identity.id,
            "text": render(template, normalize_locale(identity.locale), **context),
            "dedupe_key": dedupe_key,
            "priority": int(Priority.BULK),
        }
        for identity in chats.values()
    ]
    for batch in _batches(chat_rows):
        await enqueue_many(session=session, rows=batch)
    unreached = [person for person in people if person not in chats]
    phones: list[str] = []
    for start in range(0, len(unreached), BATCH):
        chunk = unreached[start : start + BATCH]
        found = await session.exec(
            select(Person.phone).where(col(Person.id).in_(chunk), col(Person.phone).is_not(None))
        )
        phones.extend(str(phone) for phone in found.all() if phone)
    locale = normalize_locale(default_locale)
    texts = [
        sms_row(
            phone=phone, key=sms_key, locale=locale, values={}, dedupe_key=dedupe_key, priority=Priority.BULK
        )
        for phone in phones
    ]
    for batch in _batches(texts):
        await enqueue_sms_rows(session=session, rows=batch)
    return len(chat_rows) + len(texts)
