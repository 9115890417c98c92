"""Staff sign-in: throttled per username and per client address, locked after repeated failures, and as
slow and as worded for an unknown username as for a known one.

Three guards, checked before the password is (so a refused guess costs no argon2 work and says nothing):

- a window count per client address and per username (``TIANBAO_SIGN_IN_PER_ADDRESS`` and
  ``TIANBAO_SIGN_IN_PER_USERNAME`` attempts in ``TIANBAO_SIGN_IN_WINDOW_SECONDS``), in Redis when
  ``TIANBAO_REDIS_URL`` is set (shared by every API replica), in this process otherwise (the embedded
  default is one process; losing a minute's count on restart loses nothing that matters);
- the account's lock, in the database (``staff_user.failed_logins``/``locked_until``), so a restart never
  unlocks anyone: ``TIANBAO_SIGN_IN_MAX_FAILURES`` failures in a row lock it for
  ``TIANBAO_SIGN_IN_LOCKOUT_MINUTES``, or until an admin unlocks it (audited);
- the same lock for a username that names no (active) account, counted in the window store: otherwise
  "locked" would tell which usernames exist.

Every refusal is the same 429 ``sign_in_throttled``, whichever guard refused and whether or not the
account exists; an unknown username's password is verified against a dummy argon2 hash.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from redis.asyncio import Redis

from backend.db import Database
from backend.security import verify_or_waste_time
from backend.settings import Settings
from backend.staff import service
from backend.staff.models import StaffUser
from backend.throttle import AttemptStore, MemoryAttemptStore, RedisAttemptStore, window_store

# The stores moved to backend/throttle.py (the web chat counts with them too); named here as before.
__all__ = ["AttemptStore", "MemoryAttemptStore", "RedisAttemptStore", "SignInGuard", "SignInLimits"]

# How long an unknown username's series of failures is remembered (an account's is kept until it ends).
UNKNOWN_FAILURES_SECONDS = 24 * 3600
KEY_PREFIX = "tianbao:signin:"


@dataclass(frozen=True)
class SignInLimits:
    window_seconds: int
    per_username: int
    per_address: int
    max_failures: int
    lockout: timedelta

    @classmethod
    def of(cls, settings: Settings) -> SignInLimits:
        return cls(
            window_seconds=settings.sign_in_window_seconds,
            per_username=settings.sign_in_per_username,
            per_address=settings.sign_in_per_address,
            max_failures=settings.sign_in_max_failures,
            lockout=timedelta(minutes=settings.sign_in_lockout_minutes),
        )


@dataclass(frozen=True)
class SignInOutcome:
    """``user`` when the password was right; ``throttled`` when a guard refused before checking it.
    ``after`` is the bookkeeping (failure count, lock, reset) to run once the answer has gone out, so
    that the answer takes as long whether or not the username names an account."""

    user: StaffUser | None
    throttled: bool
    after: Callable[[], Awaitable[None]] | None = None


def _keys(username: str, address: str | None) -> tuple[str, str, str, str]:
    # Hashed: a username of any length or spelling makes a short, safe key, and Redis never holds names.
    name = hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return (
        f"{KEY_PREFIX}address:{address or 'unknown'}",
        f"{KEY_PREFIX}username:{name}",
        f"{KEY_PREFIX}failures:{name}",
        f"{KEY_PREFIX}locked:{name}",
    )


class SignInGuard:
    def __init__(self, store: AttemptStore, db: Database, limits: SignInLimits) -> None:
        self.store = store
        self.db = db
        self.limits = limits

    async def sign_in(self, *, username: str, password: str, address: str | None) -> SignInOutcome:
        address_key, username_key, failures_key, locked_key = _keys(username, address)
        limits = self.limits
        # Counted before the password is checked, so concurrent guesses are bounded too; a success
        # gives its attempt back.
        over_address = await self.store.hit(address_key, limits.window_seconds) > limits.per_address
        over_username = await self.store.hit(username_key, limits.window_seconds) > limits.per_username
        async with self.db.session() as session:
            user = await service.find_by_username(session=session, username=username)
        account = user if user is not None and user.active and user.id is not None else None
        locked = service.is_locked(account) if account else await self.store.count(locked_key) > 0
        if over_address or over_username or locked:
            return SignInOutcome(user=None, throttled=True)
        right = await asyncio.to_thread(
            verify_or_waste_time, account.password_hash if account else None, password
        )
        if right and account is not None:
            await self.store.release(address_key)
            await self.store.forget(username_key, failures_key)
            return SignInOutcome(user=account, throttled=False, after=self._cleared(account))
        if account is not None:
            return SignInOutcome(user=None, throttled=False, after=self._failed(account, address))
        return SignInOutcome(user=None, throttled=False, after=self._failed_unknown(failures_key, locked_key))

    async def unlocked(self, username: str) -> None:
        """An admin's unlock also ends the window counts for the username."""
        _, username_key, failures_key, locked_key = _keys(username, None)
        await self.store.forget(username_key, failures_key, locked_key)

    def _cleared(self, user: StaffUser) -> Callable[[], Awaitable[None]] | None:
        if not user.failed_logins and user.locked_until is None:
            return None
        user_id = user.id
        assert user_id is not None

        async def clear() -> None:
            async with self.db.session() as session:
                await service.clear_failed_sign_ins(session=session, user_id=user_id)

        return clear

    def _failed(self, user: StaffUser, address: str | None) -> Callable[[], Awaitable[None]]:
        user_id = user.id
        assert user_id is not None

        async def count_failure() -> None:
            async with self.db.session() as session:
                await service.record_failed_sign_in(
                    session=session,
                    user_id=user_id,
                    max_failures=self.limits.max_failures,
                    lockout=self.limits.lockout,
                    ip=address,
                )

        return count_failure

    def _failed_unknown(self, failures_key: str, locked_key: str) -> Callable[[], Awaitable[None]]:
        async def count_failure() -> None:
            if await self.store.hit(failures_key, UNKNOWN_FAILURES_SECONDS) >= self.limits.max_failures:
                await self.store.hit(locked_key, int(self.limits.lockout.total_seconds()))
                await self.store.forget(failures_key)

        return count_failure


def store_for(redis: Redis | None) -> AttemptStore:
    return window_store(redis)
