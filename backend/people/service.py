"""Chat identities: opening a conversation, choosing a language, binding a phone to a person."""

from __future__ import annotations

import logging
import re
from functools import cache
from typing import Any

from sqlalchemy import bindparam, case, func
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.dml import ReturningInsert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.db import utcnow
from backend.people.directory import IdentityDirectory, IdentityRecord
from backend.people.models import ChatIdentity, Person
from backend.refusals import Refusal
from backend.security import BotPrincipal
from messages import normalize_locale

# Main-menu entries in display order. An entry appears only once its feature is built, so a user never
# taps into "coming soon". Later features add their key here.
MENU_FEATURES: tuple[str, ...] = ("enroll", "policies", "report", "claims", "publicity", "help")

log = logging.getLogger(__name__)

_CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")


class PhoneError(Refusal):
    """A phone number Tianbao cannot use; ``code`` names the message that explains why."""


def normalize_cn_mobile(raw: str) -> str:
    """A mainland mobile number as 11 digits: '+86 138-1234-5678' -> '13812345678'."""
    digits = re.sub(r"[\s\-()]", "", raw)
    digits = digits.removeprefix("+")
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix) :]
            break
    if not digits.isdigit():
        raise PhoneError("phone_not_digits")
    if not _CN_MOBILE.match(digits):
        raise PhoneError("phone_not_cn_mobile")
    return digits


async def find_identity(*, session: AsyncSession, channel: str, external_id: str) -> ChatIdentity | None:
    query = select(ChatIdentity).where(
        ChatIdentity.channel == channel, ChatIdentity.external_id == external_id
    )
    return (await session.exec(query)).first()


async def principal_for(
    *, session: AsyncSession, directory: IdentityDirectory, channel: str, external_id: str
) -> BotPrincipal | None:
    record = await identity_record(
        session=session, directory=directory, channel=channel, external_id=external_id
    )
    if record is None:
        return None
    return BotPrincipal(
        identity_id=record.id,
        channel=record.channel,
        external_id=record.external_id,
        person_id=record.person_id,
        phone_verified=record.phone_verified,
    )


async def identity_record(
    *, session: AsyncSession, directory: IdentityDirectory, channel: str, external_id: str
) -> IdentityRecord | None:
    """The identity as the directory knows it, read from the database (and remembered) on a miss."""
    record = await directory.cache.get((channel, external_id))
    if record is None:
        identity = await find_identity(session=session, channel=channel, external_id=external_id)
        if identity is None:
            return None
        record = IdentityRecord.of(identity)
        await directory.cache.put(record)
    return record


async def open_identity(
    *,
    directory: IdentityDirectory,
    channel: str,
    external_id: str,
    address: str,
    first_name: str | None,
    language_code: str | None,
    default_locale: str,
) -> IdentityRecord:
    """Create or refresh the identity; a user who had blocked the bot is back on the list.

    A returning user whose /start changes nothing but the time is answered from the directory, and
    the time is written behind (see ``directory.PresenceBuffer``). Otherwise one upsert, committed
    with those of other users starting at the same moment (``directory.GroupWriter``); it needs no
    session from the caller, so the common case opens none.
    """
    now = utcnow()
    follow = normalize_locale(language_code, default=default_locale) if language_code else None
    known = await directory.cache.get((channel, external_id))
    if known is not None and _start_changes_nothing(known, address, first_name or None, follow):
        await directory.presence.note(known.id, now)
        return known
    statement = _upsert_statement(directory.writer.db.dialect, follow_locale=follow is not None)
    parameters = {
        "p_channel": channel,
        "p_external_id": external_id,
        "p_address": address,
        "p_first_name": first_name or None,
        "p_locale": follow or default_locale,
        "p_now": now,
    }
    row = await directory.writer.write(statement, parameters)
    record = IdentityRecord.from_row(row)
    await directory.cache.put(record)
    return record


def _start_changes_nothing(
    known: IdentityRecord, address: str, first_name: str | None, follow: str | None
) -> bool:
    return (
        not known.stopped
        and known.address == address
        and (first_name is None or first_name == known.first_name)
        and (follow is None or known.locale_chosen or follow == known.locale)
    )


@cache
def _upsert_statement(dialect: str, *, follow_locale: bool) -> ReturningInsert[Any]:
    """One statement for new and returning users alike: INSERT ... ON CONFLICT DO UPDATE ... RETURNING.

    Built once per dialect and variant: composing it costs more than running it on SQLite.
    """
    table = ChatIdentity.__table__  # type: ignore[attr-defined]
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(table).values(
        channel=bindparam("p_channel"),
        external_id=bindparam("p_external_id"),
        address=bindparam("p_address"),
        first_name=bindparam("p_first_name"),
        locale=bindparam("p_locale"),
        locale_chosen=False,
        created_at=bindparam("p_now"),
        last_seen_at=bindparam("p_now"),
    )
    changes: dict[str, Any] = {
        "address": statement.excluded.address,
        "first_name": func.coalesce(statement.excluded.first_name, table.c.first_name),
        "stopped_at": None,
        "last_seen_at": statement.excluded.last_seen_at,
    }
    if follow_locale:  # the user's app language, unless they chose one in the bot
        changes["locale"] = case((table.c.locale_chosen, table.c.locale), else_=statement.excluded.locale)
    return statement.on_conflict_do_update(
        index_elements=[table.c.channel, table.c.external_id], set_=changes
    ).returning(*table.c)


async def get_identity(*, session: AsyncSession, principal: BotPrincipal) -> ChatIdentity:
    identity = await session.get(ChatIdentity, principal.identity_id)
    assert identity is not None
    return identity


async def choose_locale(
    *, session: AsyncSession, directory: IdentityDirectory, principal: BotPrincipal, locale: str
) -> ChatIdentity:
    identity = await get_identity(session=session, principal=principal)
    identity.locale = normalize_locale(locale)
    identity.locale_chosen = True
    await session.commit()
    await directory.cache.drop([(identity.channel, identity.external_id)])
    await session.refresh(identity)
    return identity


async def bind_phone(
    *, session: AsyncSession, directory: IdentityDirectory, principal: BotPrincipal, raw_phone: str
) -> ChatIdentity:
    """Bind a phone shared through the contact button: the person with that phone, or a new one.

    Telegram's button proves the number is the account's own, so the binding is verified. Web chat's
    cannot (a browser can send any number): there every number needs the SMS code (``phone_needs_code``)
    unless the chat already proved this very number. Refusing new numbers too means the answer never
    tells a stranger whether a number is registered."""
    identity = await get_identity(session=session, principal=principal)
    phone = normalize_cn_mobile(raw_phone)
    if identity.channel not in VERIFIED_CHANNELS:
        if identity.phone != phone or identity.phone_verified_at is None or identity.person_id is None:
            raise PhoneError("phone_needs_code")
        return identity
    return await _bind(session, directory, identity, phone)


async def bind_verified_phone(
    *, session: AsyncSession, directory: IdentityDirectory, identity: ChatIdentity, phone: str
) -> ChatIdentity:
    """Bind a phone the chat proved it holds (the right SMS code): it joins that phone's person."""
    return await _bind(session, directory, identity, normalize_cn_mobile(phone))


async def _bind(
    session: AsyncSession, directory: IdentityDirectory, identity: ChatIdentity, phone: str
) -> ChatIdentity:
    """Join the proved number's person (a new one for a number nobody holds)."""
    person = (await session.exec(select(Person).where(Person.phone == phone))).first()
    if person is None:
        person = Person(phone=phone, name=identity.first_name)
        session.add(person)
        await session.flush()
    detached = await _detach_unverified(session, identity, person)
    identity.phone_verified_at = utcnow()
    identity.phone = phone
    identity.person_id = person.id
    await session.commit()
    await directory.cache.drop((i.channel, i.external_id) for i in [identity, *detached])
    await session.refresh(identity)
    return identity


# Channels whose contact sharing proves the number: Telegram's request-contact button. A web chat proves it
# by the SMS code (``backend.phone_codes``); until then its binding is unverified.
VERIFIED_CHANNELS = frozenset({"telegram"})


async def _detach_unverified(
    session: AsyncSession, identity: ChatIdentity, person: Person
) -> list[ChatIdentity]:
    """A verified owner joins ``person``; the unverified identities that had bound its number lose it
    (whoever typed the number without proving it). Other verified devices stay: they are the owner's."""
    others = (
        await session.exec(
            select(ChatIdentity).where(
                ChatIdentity.person_id == person.id,
                ChatIdentity.id != identity.id,
                col(ChatIdentity.phone_verified_at).is_(None),
            )
        )
    ).all()
    for other in others:
        other.person_id = None
        other.phone = None
    return list(others)


async def devices(*, session: AsyncSession, principal: BotPrincipal) -> list[ChatIdentity]:
    """The chat identities of the person ("my devices"), most recently seen first. An unverified chat
    sees only itself: it has not proved it is the person's."""
    if principal.person_view is None:
        return [await get_identity(session=session, principal=principal)]
    query = (
        select(ChatIdentity)
        .where(ChatIdentity.person_id == principal.person_view)
        .order_by(col(ChatIdentity.last_seen_at).desc(), col(ChatIdentity.id).desc())
    )
    return list((await session.exec(query)).all())


async def end_device(
    *, session: AsyncSession, directory: IdentityDirectory, principal: BotPrincipal, device_id: int
) -> ChatIdentity:
    """Detach another chat of the person: it no longer sees the person's data and must verify again.
    Returns the ended chat (the bot erases a web chat's transcript)."""
    target = await session.get(ChatIdentity, device_id)
    if principal.person_view is None or target is None or target.person_id != principal.person_view:
        raise PhoneError("not_found")
    if target.id == principal.identity_id:
        raise PhoneError("device_is_this")
    target.person_id = None
    target.phone = None
    target.phone_verified_at = None
    await session.commit()
    await directory.cache.drop([(target.channel, target.external_id)])
    # Audited in the log: the person ended their own device; no staff action to record.
    log.info("device ended: identity %s detached by identity %s", device_id, principal.identity_id)
    return target


def masked_external_id(external_id: str) -> str:
    """Enough of a chat's id to tell devices apart, too little to address one."""
    return "****" + external_id[-4:] if len(external_id) > 4 else "****"


async def mark_stopped(
    *, session: AsyncSession, directory: IdentityDirectory, channel: str, address: str
) -> None:
    """The user blocked the bot: leave them out of fan-outs until they /start again (caller commits).

    The directory forgets them now, before the commit: their next /start then takes the written path,
    which clears the stop at once (a forgotten entry costs one query; a stale one would keep them out).
    """
    query = select(ChatIdentity).where(ChatIdentity.channel == channel, ChatIdentity.address == address)
    identities = (await session.exec(query)).all()
    for identity in identities:
        identity.stopped_at = identity.stopped_at or utcnow()
    await directory.cache.drop((i.channel, i.external_id) for i in identities)
