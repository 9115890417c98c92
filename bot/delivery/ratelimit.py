"""Telegram's sending limits, shared by every worker through Redis when it is configured.

About 30 messages/s for the bot overall (1,000/s with paid broadcast), 1/s per private chat and
20/min per group. A worker waits for a slot instead of provoking 429s; 429s that still come are
honoured by the worker through ``retry_after``.
"""

from __future__ import annotations

import asyncio
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter


class RateGate:
    def __init__(
        self,
        *,
        redis_url: str = "",
        global_rate: str = "30/second",
        chat_rate: str = "1/second",
        group_rate: str = "20/minute",
        namespace: str = "tianbao-send",
    ) -> None:
        storage: Storage = (
            RedisStorage(_limits_uri(redis_url), implementation="redispy") if redis_url else MemoryStorage()
        )
        self.limiter = MovingWindowRateLimiter(storage)
        self.global_limit: RateLimitItem = parse(global_rate)
        self.chat_limit: RateLimitItem = parse(chat_rate)
        self.group_limit: RateLimitItem = parse(group_rate)
        self.namespace = namespace
        self._paused_until = 0.0

    async def _take(self, limit: RateLimitItem, *key: str) -> bool:
        """Test before hitting: a refused attempt must not count against the window."""
        if not await self.limiter.test(limit, self.namespace, *key):
            return False
        return await self.limiter.hit(limit, self.namespace, *key)

    def pause(self, seconds: float) -> None:
        """A flood-wait from Telegram: hold every send of this worker for ``seconds``."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    async def acquire(self, address: str, *, timeout: float = 120.0) -> bool:
        """Wait until the bot may send to ``address``; False if no slot came within ``timeout``."""
        deadline = time.monotonic() + timeout
        chat_limit = self.group_limit if address.startswith("-") else self.chat_limit
        while time.monotonic() < deadline:
            pause = self._paused_until - time.monotonic()
            if pause > 0:
                await asyncio.sleep(min(pause, 1.0))
                continue
            # Global budget first (a cheap test), then the chat's own slot, then spend the global one.
            if await self.limiter.test(self.global_limit, self.namespace, "global") and await self._take(
                chat_limit, "chat", address
            ):
                await self.limiter.hit(self.global_limit, self.namespace, "global")
                return True
            await asyncio.sleep(0.05)
        return False


def _limits_uri(redis_url: str) -> str:
    return redis_url if redis_url.startswith("async+") else f"async+{redis_url}"
