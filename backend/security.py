"""Passwords, tokens and the two kinds of caller: staff (bearer JWT) and the bot (service token)."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache

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


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # Made once, with the same parameters as real hashes: verifying against it costs what a real
    # verification costs, so an unknown username answers as slowly as a wrong password.
    return _hasher.hash(secrets.token_urlsafe(16))


def verify_or_waste_time(password_hash: str | None, password: str) -> bool:
    """``verify_password``, or the same work against a dummy hash when there is no account to check."""
    if password_hash is None:
        verify_password(_dummy_hash(), password)
        return False
    return verify_password(password_hash, password)


# A token without any of these is refused, not trusted forever (no ``exp``) or for nobody (no ``sub``).
REQUIRED_CLAIMS = ["sub", "exp", "iat", "ver"]


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    version: int


def create_access_token(*, secret: str, user_id: int, username: str, version: int, minutes: int) -> str:
    now = utcnow()
    claims = {
        "sub": str(user_id),
        "name": username,
        "ver": version,
        "iat": now,
        "exp": now + timedelta(minutes=minutes),
    }
    return jwt.encode(claims, secret, algorithm=JWT_ALGORITHM)


def decode_access_token(token: str, *, secret: str) -> TokenClaims | None:
    """Who a valid, unexpired token was issued to, and under which token version; None otherwise."""
    try:
        claims = jwt.decode(token, secret, algorithms=[JWT_ALGORITHM], options={"require": REQUIRED_CLAIMS})
        version = claims["ver"]
        if not isinstance(version, int) or isinstance(version, bool):
            return None
        return TokenClaims(user_id=int(claims["sub"]), version=version)
    except (jwt.PyJWTError, KeyError, ValueError, TypeError):
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
    # The identity proved the phone (Telegram's contact button, or an SMS code in web chat): only then does
    # it see what belongs to its person beyond what it did itself (policies enrolled by an agent, other
    # devices' claims). An unverified web chat binding sees its own identity's data only.
    phone_verified: bool = False

    @property
    def person_view(self) -> int | None:
        """The person whose data this chat sees as its own, when its binding is verified."""
        return self.person_id if self.phone_verified else None

    def sees(self, identity_id: int | None, person_id: int | None) -> bool:
        """Whether a row made by ``identity_id`` for ``person_id`` (a policy) is this chat's to see."""
        return identity_id == self.identity_id or (
            self.person_view is not None and person_id == self.person_view
        )
