"""Chat identities: opening a conversation, choosing a language, binding a phone to a person."""

from __future__ import annotations

import re

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.db import utcnow
from backend.people.models import ChatIdentity, Person
from backend.security import BotPrincipal
from messages import normalize_locale

# Main-menu entries in display order. An entry appears only once its feature is built, so a user never
# taps into "coming soon". Later features add their key here.
MENU_FEATURES: tuple[str, ...] = ("enroll", "policies", "report", "claims", "help")

_CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")


class PhoneError(ValueError):
    """A phone number Tianbao cannot use; ``code`` names the message that explains why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def normalize_cn_mobile(raw: str) -> str:
    """A mainland mobile number as 11 digits: '+86 138-1234-5678' -> '13812345678'."""
    digits = re.sub(r"[\s\-()]", "", raw)
    digits = digits.removeprefix("+")
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix) :]
            break
    if not digits.isdigit():
        raise PhoneError("phone_not_digits", f"phone {raw!r} has characters that are not digits")
    if not _CN_MOBILE.match(digits):
        raise PhoneError("phone_not_cn_mobile", f"phone {raw!r} is not a mainland China mobile number")
    return digits


async def find_identity(*, session: AsyncSession, channel: str, external_id: str) -> ChatIdentity | None:
    query = select(ChatIdentity).where(
        ChatIdentity.channel == channel, ChatIdentity.external_id == external_id
    )
    return (await session.exec(query)).first()


async def principal_for(*, session: AsyncSession, channel: str, external_id: str) -> BotPrincipal | None:
    identity = await find_identity(session=session, channel=channel, external_id=external_id)
    if identity is None or identity.id is None:
        return None
    return BotPrincipal(
        identity_id=identity.id,
        channel=identity.channel,
        external_id=identity.external_id,
        person_id=identity.person_id,
    )


async def open_identity(
    *,
    session: AsyncSession,
    channel: str,
    external_id: str,
    address: str,
    first_name: str | None,
    language_code: str | None,
    default_locale: str,
) -> ChatIdentity:
    """Create or refresh the identity; a user who had blocked the bot is back on the list."""
    identity = await find_identity(session=session, channel=channel, external_id=external_id)
    now = utcnow()
    if identity is None:
        identity = ChatIdentity(
            channel=channel,
            external_id=external_id,
            address=address,
            first_name=first_name,
            locale=normalize_locale(language_code, default=default_locale),
            created_at=now,
        )
        session.add(identity)
    else:
        identity.address = address
        identity.first_name = first_name or identity.first_name
        if not identity.locale_chosen and language_code:
            identity.locale = normalize_locale(language_code, default=default_locale)
        identity.stopped_at = None
    identity.last_seen_at = now
    await session.commit()  # expire_on_commit=False: the loaded values stay, no re-read needed
    return identity


async def get_identity(*, session: AsyncSession, principal: BotPrincipal) -> ChatIdentity:
    identity = await session.get(ChatIdentity, principal.identity_id)
    assert identity is not None
    return identity


async def choose_locale(*, session: AsyncSession, principal: BotPrincipal, locale: str) -> ChatIdentity:
    identity = await get_identity(session=session, principal=principal)
    identity.locale = normalize_locale(locale)
    identity.locale_chosen = True
    await session.commit()
    await session.refresh(identity)
    return identity


async def bind_phone(*, session: AsyncSession, principal: BotPrincipal, raw_phone: str) -> ChatIdentity:
    """Bind a phone shared through the contact button: the person with that phone, or a new one."""
    phone = normalize_cn_mobile(raw_phone)
    identity = await get_identity(session=session, principal=principal)
    person = (await session.exec(select(Person).where(Person.phone == phone))).first()
    if person is None:
        person = Person(phone=phone, name=identity.first_name)
        session.add(person)
        await session.flush()
    elif person.id != identity.person_id:
        await _claim_existing_person(session, identity, person)
    identity.phone = phone
    identity.phone_verified_at = utcnow()
    identity.person_id = person.id
    await session.commit()
    await session.refresh(identity)
    return identity


# Telegram's request-contact button proves the number belongs to the account; web chat cannot prove it
# (a browser can send any number), so a web chat identity never joins a person someone else already holds.
VERIFIED_CHANNELS = frozenset({"telegram"})


async def _claim_existing_person(session: AsyncSession, identity: ChatIdentity, person: Person) -> None:
    others = (
        await session.exec(
            select(ChatIdentity).where(ChatIdentity.person_id == person.id, ChatIdentity.id != identity.id)
        )
    ).all()
    if identity.channel not in VERIFIED_CHANNELS:
        if others:
            raise PhoneError("phone_taken", "this phone is already linked to another account")
        return
    # The verified owner wins: unverified identities that had bound this number are detached.
    for other in others:
        if other.channel not in VERIFIED_CHANNELS:
            other.person_id = None
            other.phone = None
            other.phone_verified_at = None


async def mark_stopped(*, session: AsyncSession, channel: str, address: str) -> None:
    """The user blocked the bot: leave them out of fan-outs until they /start again (caller commits)."""
    query = select(ChatIdentity).where(ChatIdentity.channel == channel, ChatIdentity.address == address)
    for identity in (await session.exec(query)).all():
        identity.stopped_at = identity.stopped_at or utcnow()
