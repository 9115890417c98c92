"""Window counters for throttles, and the client address they count.

A counter is a fixed window per key: the first hit starts it, the key expires when it ends. In Redis
when ``TIANBAO_REDIS_URL`` is set, so every replica counts the same attempts; in the process otherwise
(the embedded default is one process: a restart forgets at most one window's counts). Staff sign-in
(``backend/staff/signin.py``) and the web chat's limits (``bot/channels/webchat/limits.py``) share them.

No database, no domain: the bot imports this too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis
from starlette.requests import Request

# Beyond this many keys the in-process store first drops what has expired, then the oldest entries: a
# spray of random usernames (or chat ids) cannot grow it without bound.
MEMORY_MAX_KEYS = 100_000


def client_ip(request: Request) -> str | None:
    """The connection's address. Behind a reverse proxy, uvicorn's ``--proxy-headers`` (with
    ``--forwarded-allow-ips`` set to the proxy) makes it the caller's; never a header read here,
    which any caller could forge."""
    return request.client.host if request.client else None


class AttemptStore(Protocol):
    """Counters that expire: ``hit`` adds ``amount`` (one attempt, or a number of bytes) and tells the
    count in the key's current window."""

    async def hit(self, key: str, seconds: int, amount: int = 1) -> int: ...
    async def count(self, key: str) -> int: ...
    async def release(self, key: str, amount: int = 1) -> None: ...
    async def forget(self, *keys: str) -> None: ...
    async def seconds_left(self, key: str) -> int: ...


class MemoryAttemptStore:
    """The embedded default's store: one process, so a dictionary is shared by every request."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = MEMORY_MAX_KEYS) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._entries: dict[str, tuple[int, float]] = {}

    def _live(self, key: str) -> tuple[int, float] | None:
        entry = self._entries.get(key)
        if entry is not None and entry[1] <= self._clock():
            del self._entries[key]
            return None
        return entry

    async def hit(self, key: str, seconds: int, amount: int = 1) -> int:
        entry = self._live(key)
        count, expires = entry if entry else (0, self._clock() + seconds)
        if entry is None and len(self._entries) >= self._max_keys:
            self._prune()
        self._entries[key] = (count + amount, expires)
        return count + amount

    async def count(self, key: str) -> int:
        entry = self._live(key)
        return entry[0] if entry else 0

    async def release(self, key: str, amount: int = 1) -> None:
        entry = self._live(key)
        if entry is not None:
            self._entries[key] = (max(entry[0] - amount, 0), entry[1])

    async def forget(self, *keys: str) -> None:
        for key in keys:
            self._entries.pop(key, None)

    async def seconds_left(self, key: str) -> int:
        entry = self._live(key)
        return max(int(entry[1] - self._clock() + 0.999), 1) if entry else 0

    def _prune(self) -> None:
        now = self._clock()
        for key in [k for k, (_, expires) in self._entries.items() if expires <= now]:
            del self._entries[key]
        while len(self._entries) >= self._max_keys:  # dicts keep insertion order: the oldest go first
            del self._entries[next(iter(self._entries))]


class RedisAttemptStore:
    """Shared by every replica: a fixed window per key (INCRBY, and EXPIRE on the window's first hit)."""

    def __init__(self, client: Redis) -> None:
        self._client = client

    async def hit(self, key: str, seconds: int, amount: int = 1) -> int:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.incrby(key, amount)
            pipe.expire(key, seconds, nx=True)
            count, _ = await pipe.execute()
        return int(count)

    async def count(self, key: str) -> int:
        value = await self._client.get(key)
        return int(value) if value else 0

    async def release(self, key: str, amount: int = 1) -> None:
        await self._client.eval(_RELEASE_SCRIPT, 1, key, amount)

    async def forget(self, *keys: str) -> None:
        if keys:
            await self._client.delete(*keys)

    async def seconds_left(self, key: str) -> int:
        return max(int(await self._client.ttl(key)), 0)


# Take back only from a key that still exists (DECRBY would make a missing one negative, with no expiry).
_RELEASE_SCRIPT = (
    "if redis.call('exists', KEYS[1]) == 1 then return redis.call('decrby', KEYS[1], ARGV[1]) end return 0"
)


def window_store(redis: Redis | None) -> AttemptStore:
    return RedisAttemptStore(redis) if redis is not None else MemoryAttemptStore()
