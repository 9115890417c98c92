"""Phone verification by SMS code (web chat): a 6-digit code, valid 5 minutes, 5 tries.

- Sending is limited per number (``check_code_allowance``: 1 a minute, 5 an hour, 10 a day by default,
  counted from the outbox) and per chat identity with the same limits (counted here). The bot feeds the
  web chat's updates to the dispatcher without the browser's address, so the chat, not the address, is
  the second key; the web chat's own per-address limits still bound how many chats one address opens.
- Only the code's HMAC-SHA256 under the secret key is stored, bound to the chat and the number, and it is
  compared in constant time. The chat's latest code is the only live one; five wrong tries kill it.
- The right code joins the chat to the number's person as a verified binding (``bind_verified_phone``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.db import utcnow
from backend.outbox.models import Priority
from backend.outbox.sms.service import SmsError, check_code_allowance, enqueue_sms
from backend.people.directory import IdentityDirectory
from backend.people.models import ChatIdentity
from backend.people.service import PhoneError, bind_verified_phone, get_identity, normalize_cn_mobile
from backend.phone_codes.models import PhoneCode
from backend.refusals import Refusal
from backend.security import BotPrincipal
from backend.settings import Settings
from messages import mask_phone, normalize_locale

log = logging.getLogger(__name__)

CODE_DIGITS = 6
CODE_VALID = timedelta(minutes=5)
CODE_TRIES = 5


class CodeError(Refusal):
    """A code that does not verify: wrong (``tries_left``), expired, dead after too many tries, none sent."""


@dataclass(frozen=True)
class CodeSent:
    phone_masked: str
    valid_minutes: int


def code_digest(settings: Settings, identity_id: int, phone: str, code: str) -> str:
    """Keyed and bound to the chat and the number: a leaked table gives nobody a code to type, and a code
    sent to one chat does not verify another."""
    message = f"tianbao-phone-code-v1:{identity_id}:{phone}:{code}".encode()
    return hmac.new(settings.secret_key.encode(), message, hashlib.sha256).hexdigest()


async def send_code(
    *, session: AsyncSession, settings: Settings, principal: BotPrincipal, raw_phone: str | None
) -> CodeSent:
    """Text a new code to ``raw_phone`` (or the chat's bound number) for this chat; the earlier one dies."""
    identity = await get_identity(session=session, principal=principal)
    phone = normalize_cn_mobile(raw_phone) if raw_phone else identity.phone
    if not phone:
        raise PhoneError("phone_required")
    assert identity.id is not None
    await _check_chat_allowance(session, settings, identity.id)
    await check_code_allowance(session=session, settings=settings, phone=phone)
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    now = utcnow()
    session.add(
        PhoneCode(
            identity_id=identity.id,
            phone=phone,
            code_hash=code_digest(settings, identity.id, phone, code),
            created_at=now,
            expires_at=now + CODE_VALID,
        )
    )
    await enqueue_sms(
        session=session,
        phone=phone,
        key="otp",
        locale=normalize_locale(identity.locale),
        values={"code": code},
        dedupe_key=f"otp-{identity.id}-{secrets.token_hex(8)}",
        priority=Priority.REPLY,  # the person is waiting for it
    )
    await session.commit()
    log.info("phone code sent: identity %s, number %s", identity.id, mask_phone(phone))
    return CodeSent(phone_masked=mask_phone(phone), valid_minutes=int(CODE_VALID.total_seconds() // 60))


async def _check_chat_allowance(session: AsyncSession, settings: Settings, identity_id: int) -> None:
    """The per-number limits, applied to the chat too: one chat cannot text code after code to many
    numbers."""
    now = utcnow()
    windows = (
        (timedelta(minutes=1), settings.sms_codes_per_minute, "sms_code_too_often"),
        (timedelta(hours=1), settings.sms_codes_per_hour, "phone_code_chat_limit"),
        (timedelta(days=1), settings.sms_codes_per_day, "phone_code_chat_limit"),
    )
    for window, allowed, code in windows:
        sent = (
            await session.exec(
                select(func.count())
                .select_from(PhoneCode)
                .where(PhoneCode.identity_id == identity_id, col(PhoneCode.created_at) > now - window)
            )
        ).one()
        if sent >= allowed:
            raise SmsError(code)


async def verify_code(
    *,
    session: AsyncSession,
    settings: Settings,
    directory: IdentityDirectory,
    principal: BotPrincipal,
    code: str,
) -> ChatIdentity:
    """The right code binds the chat to the number's person (verified); anything else says why not."""
    identity = await get_identity(session=session, principal=principal)
    typed = "".join(code.split())
    latest = (
        await session.exec(
            select(PhoneCode).where(PhoneCode.identity_id == identity.id).order_by(col(PhoneCode.id).desc())
        )
    ).first()
    if latest is None or latest.used_at is not None:
        raise CodeError("phone_code_none")
    if latest.attempts >= CODE_TRIES:
        raise CodeError("phone_code_dead")
    if latest.expires_at <= utcnow():
        raise CodeError("phone_code_expired")
    if not (typed.isascii() and typed.isdigit() and len(typed) == CODE_DIGITS):
        raise CodeError("phone_code_format")  # not a try: a typo of length is no guess
    assert identity.id is not None
    expected = code_digest(settings, identity.id, latest.phone, typed)
    if not hmac.compare_digest(latest.code_hash, expected):
        latest.attempts += 1
        await session.commit()
        if latest.attempts >= CODE_TRIES:
            raise CodeError("phone_code_dead")
        raise CodeError("phone_code_wrong", tries_left=CODE_TRIES - latest.attempts)
    latest.used_at = utcnow()
    log.info("phone verified by code: identity %s, number %s", identity.id, mask_phone(latest.phone))
    return await bind_verified_phone(
        session=session, directory=directory, identity=identity, phone=latest.phone
    )
