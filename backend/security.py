"""Passwords, tokens and the two kinds of caller: staff (bearer JWT) and the bot (service token)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from datetime import timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from backend.db import utcnow

_hasher = PasswordHasher()
JWT_ALGORITHM = "HS256"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def create_access_token(*, secret: str, user_id: int, username: str, minutes: int) -> str:
    now = utcnow()
    claims = {"sub": str(user_id), "name": username, "iat": now, "exp": now + timedelta(minutes=minutes)}
    return jwt.encode(claims, secret, algorithm=JWT_ALGORITHM)


def decode_access_token(token: str, *, secret: str) -> int | None:
    """The staff user id inside a valid, unexpired token; None otherwise."""
    try:
        claims = jwt.decode(token, secret, algorithms=[JWT_ALGORITHM])
        return int(claims["sub"])
    except (jwt.PyJWTError, KeyError, ValueError):
        return None


def tokens_match(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def significant_prefix(code: str) -> str:
    """The part of a 12-digit division code that names it: 440300000000 -> 4403, 441900000000 -> 441900."""
    for length in (2, 4, 6, 9):
        if set(code[length:]) <= {"0"}:
            return code[:length]
    return code


@dataclass(frozen=True)
class StaffPrincipal:
    user_id: int
    username: str
    role: str
    region_codes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_national(self) -> bool:
        return not self.region_codes

    def covers_region(self, code: str) -> bool:
        """Staff see only their region: a code inside one of their scopes (or any, when national)."""
        if self.is_national:
            return True
        return any(code.startswith(significant_prefix(scope)) for scope in self.region_codes)


@dataclass(frozen=True)
class BotPrincipal:
    """The bot acting for one chat identity; it may only touch what belongs to that identity's person."""

    identity_id: int
    channel: str
    external_id: str
    person_id: int | None
