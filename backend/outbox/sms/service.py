"""Texts through the outbox: rendered from approved templates, kept within the rules before the provider
has to refuse them.

- A one-time code goes to a number at most ``sms_codes_per_minute/hour/day`` times (counted from the
  outbox itself, so every replica agrees);
- bulk waits out quiet hours (21:00-08:00 local by default): ``claim_batch`` leaves it queued; warnings,
  codes and notices go at any hour;
- a number that replied TD is stopped for bulk only: codes and the notices the law requires still go;
- receipts move a sent text to delivered, or to failed with the provider's reason.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.db import utcnow
from backend.outbox.models import MessageKind, OutboxMessage, OutboxStatus, Priority
from backend.outbox.service import enqueue_many
from backend.outbox.sms.models import SmsLink, SmsNumber
from backend.outbox.sms.schemas import ReceiptIn
from backend.people.models import ChatIdentity, Person
from backend.people.reach import reachable_identity
from backend.people.service import normalize_cn_mobile
from backend.refusals import Refusal
from backend.settings import Settings
from messages import DEFAULT_LOCALE, mask_phone, normalize_locale, to_local
from messages.sms import sms_template

SMS = "sms"


class SmsError(Refusal):
    """A text refused before the provider sees it (too many codes to one number)."""


def e164(phone: str) -> str:
    """The address of a mainland mobile in the outbox and at the provider: ``+8613812345678``."""
    return "+86" + normalize_cn_mobile(phone)


def sms_row(
    *,
    phone: str,
    key: str,
    locale: str,
    values: dict[str, str],
    dedupe_key: str,
    priority: Priority = Priority.NOTICE,
    identity_id: int | None = None,
) -> dict[str, Any]:
    """One outbox row for ``enqueue_many``: the text as read, and the template the provider takes."""
    template = sms_template(key, locale)
    return {
        "channel": SMS,
        "address": e164(phone),
        "text": template.render(values),
        "parse_mode": None,
        "kind": template.kind,
        "template": {"key": key, "locale": locale, "params": template.params(values)},
        "dedupe_key": dedupe_key,
        "priority": int(priority),
        "identity_id": identity_id,
    }


async def enqueue_sms(*, session: AsyncSession, **row: Any) -> None:
    """Queue one text in the caller's transaction (see ``sms_row`` for the arguments)."""
    await enqueue_sms_rows(session=session, rows=[sms_row(**row)])


async def enqueue_sms_rows(*, session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Set-based: one INSERT for the rows, one UPDATE stopping the bulk ones to stopped numbers."""
    await enqueue_many(session=session, rows=rows)
    if any(row.get("kind") == MessageKind.BULK.value for row in rows):
        await _stop_bulk_to_stopped_numbers(session=session, addresses=[str(row["address"]) for row in rows])


async def _stop_bulk_to_stopped_numbers(*, session: AsyncSession, addresses: Sequence[str]) -> None:
    stopped = select(col(SmsNumber.phone)).where(col(SmsNumber.bulk_stopped_at).is_not(None))
    await session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.channel) == SMS, col(OutboxMessage.kind) == MessageKind.BULK.value)
        .where(col(OutboxMessage.status).in_([OutboxStatus.QUEUED.value, OutboxStatus.FAILED.value]))
        .where(col(OutboxMessage.address).in_(list(addresses)), col(OutboxMessage.address).in_(stopped))
        .values(
            status=OutboxStatus.STOPPED.value, next_attempt_at=None, last_error="number stopped bulk texts"
        )
    )


async def check_code_allowance(*, session: AsyncSession, settings: Settings, phone: str) -> None:
    """Refuse a one-time code past the number's limits per minute, hour and day (``SmsError``)."""
    now = utcnow()
    windows = (
        (timedelta(minutes=1), settings.sms_codes_per_minute, "sms_code_too_often"),
        (timedelta(hours=1), settings.sms_codes_per_hour, "sms_code_hourly"),
        (timedelta(days=1), settings.sms_codes_per_day, "sms_code_daily"),
    )
    address = e164(phone)
    for window, allowed, code in windows:
        sent = (
            await session.execute(
                select(func.count())
                .select_from(OutboxMessage)
                .where(col(OutboxMessage.channel) == SMS, col(OutboxMessage.address) == address)
                .where(col(OutboxMessage.kind) == MessageKind.OTP.value)
                .where(col(OutboxMessage.created_at) > now - window)
            )
        ).scalar_one()
        if sent >= allowed:
            raise SmsError(code)


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def in_quiet_hours(settings: Settings, now: datetime | None = None) -> bool:
    """Whether it is quiet time where people live (the span may wrap midnight)."""
    local = to_local(now or utcnow()).time()
    start, end = _clock(settings.sms_quiet_start), _clock(settings.sms_quiet_end)
    if start <= end:
        return start <= local < end
    return local >= start or local < end


def held_kinds(settings: Settings, now: datetime | None = None) -> list[str]:
    """The kinds of text the workers must not be handed now."""
    return [MessageKind.BULK.value] if in_quiet_hours(settings, now) else []


async def record_receipts(*, session: AsyncSession, receipts: Sequence[ReceiptIn]) -> int:
    """Delivered or failed, by the provider's serial id; a receipt for a text not (or no longer) sent is
    ignored, so a repeated callback changes nothing."""
    updated = 0
    now = utcnow()
    for receipt in receipts:
        values: dict[str, Any] = (
            {"status": OutboxStatus.DELIVERED.value, "delivered_at": receipt.at or now}
            if receipt.delivered
            else {"status": OutboxStatus.FAILED.value, "last_error": receipt.reason or "not delivered"}
        )
        result = await session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.channel) == SMS)
            .where(col(OutboxMessage.external_message_id) == receipt.external_message_id)
            .where(col(OutboxMessage.status) == OutboxStatus.SENT.value)
            .values(next_attempt_at=None, **values)
        )
        updated += int(result.rowcount or 0)  # type: ignore[attr-defined]
    await session.commit()
    return updated


async def stop_bulk(*, session: AsyncSession, phone: str, source: str) -> int:
    """Mark the number stopped for bulk and stop its queued bulk texts; returns how many were stopped."""
    address = e164(phone)
    now = utcnow()
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    table = SmsNumber.__table__  # type: ignore[attr-defined]
    values = {"phone": address, "bulk_stopped_at": now, "stop_source": source, "updated_at": now}
    statement = insert(table).values(values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["phone"],
            set_={"bulk_stopped_at": now, "stop_source": source, "updated_at": now},
        )
    )
    result = await session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.channel) == SMS, col(OutboxMessage.address) == address)
        .where(col(OutboxMessage.kind) == MessageKind.BULK.value)
        .where(col(OutboxMessage.status).in_([OutboxStatus.QUEUED.value, OutboxStatus.FAILED.value]))
        .values(
            status=OutboxStatus.STOPPED.value, next_attempt_at=None, last_error="number stopped bulk texts"
        )
    )
    await session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- short links: a text opens the web chat at a claim, a policy or a notice -----------------------------

LINK_ALPHABET = string.ascii_letters + string.digits
LINK_LENGTH = 10  # 62^10 ≈ 8e17: not guessable at any rate the edge lets through


@dataclass(frozen=True)
class LinkOpening:
    """``ok``: the chat's person is the link's, ``target`` is what to show. ``other_person``: the link is for
    the person with ``phone_masked``; the chat must verify that phone first. ``expired`` / ``unknown``."""

    status: str
    target: str | None = None
    phone_masked: str | None = None


async def create_link(*, session: AsyncSession, days: int, person_id: int, target: str) -> str:
    """A new link in the caller's transaction, open for ``days`` (``TIANBAO_SMS_LINK_DAYS``)."""
    token = "".join(secrets.choice(LINK_ALPHABET) for _ in range(LINK_LENGTH))
    now = utcnow()
    session.add(
        SmsLink(
            token=token,
            person_id=person_id,
            target=target,
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
    )
    return token


async def open_link(*, session: AsyncSession, token: str, person_id: int | None) -> LinkOpening:
    """What a link opens for the chat of ``person_id``: checked against the person again when opened,
    so a forwarded text opens nothing in someone else's chat."""
    link = await session.get(SmsLink, token) if len(token) == LINK_LENGTH and token.isalnum() else None
    if link is None:
        return LinkOpening("unknown")
    if link.expires_at <= utcnow():
        return LinkOpening("expired")
    if person_id != link.person_id:
        person = await session.get(Person, link.person_id)
        return LinkOpening("other_person", phone_masked=mask_phone(person.phone if person else None))
    if link.opened_at is None:
        link.opened_at = utcnow()
        await session.commit()
    return LinkOpening("ok", target=link.target)


async def text_person(
    *,
    session: AsyncSession,
    link_days: int,
    person_id: int,
    key: str,
    values: dict[str, str],
    target: str,
    dedupe_key: str,
    locale: str = DEFAULT_LOCALE,
) -> bool:
    """Tell a person who has no chat that reaches them, by text with a link to ``target``. False when
    the person has no phone to text."""
    person = await session.get(Person, person_id)
    if person is None or not person.phone:
        return False
    token = await create_link(session=session, days=link_days, person_id=person_id, target=target)
    await enqueue_sms(
        session=session,
        phone=person.phone,
        key=key,
        locale=locale,
        values={**values, "token": token},
        dedupe_key=dedupe_key,
    )
    return True


ChatNotice = Callable[[ChatIdentity], Awaitable[None]]


async def notify_person(
    *,
    session: AsyncSession,
    person_id: int | None,
    preferred: ChatIdentity | None,
    chat: ChatNotice,
    sms_key: str,
    sms_values: dict[str, str],
    target: str,
    dedupe_key: str,
    link_days: int,
) -> str:
    """Tell a person by the channel that reaches them: ``preferred`` (the chat that acted) while it has
    not blocked us, else the person's own chat that reaches them, else a text with a link to ``target``.
    ``chat`` enqueues the chat message for the chosen identity, in its language. Returns the channel
    used: "chat", "sms" or "none" (no chat and no phone)."""
    identity = preferred if preferred is not None and preferred.stopped_at is None else None
    if identity is None and person_id is not None:
        identity = await reachable_identity(session=session, person_id=person_id)
    if identity is not None:
        await chat(identity)
        return "chat"
    if person_id is None:
        return "none"
    texted = await text_person(
        session=session,
        link_days=link_days,
        person_id=person_id,
        key=sms_key,
        values=sms_values,
        target=target,
        dedupe_key=dedupe_key,
        locale=normalize_locale(preferred.locale if preferred is not None else None),
    )
    return "sms" if texted else "none"
