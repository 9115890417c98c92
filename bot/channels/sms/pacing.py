"""Keep a sender at the provider's rate instead of provoking its ``RequestLimitExceeded``.

A token bucket counted in numbers (a call to 50 numbers takes 50 tokens), shared by every ``send`` of one
provider object. Waiters are served in arrival order, so a large batch cannot starve a one-time code
queued behind it for longer than the batch's own next call.

``NumberPacer`` is one process's bucket; ``RedisNumberPacer`` is one bucket for every worker that shares
the Redis (the provider's rate is the account's, whatever the number of workers). Its refill and take
are one Lua script on Redis's own clock, so workers on machines whose clocks differ still share it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis


class Pacer(Protocol):
    def pause(self, seconds: float) -> None: ...

    async def acquire(self, numbers: int) -> None: ...

    async def aclose(self) -> None: ...


class NumberPacer:
    def __init__(
        self,
        rate_per_second: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        self.rate = rate_per_second
        # The bucket holds one call's worth by default: idle time does not bank a burst the provider
        # would see as a spike.
        self.capacity = max(1.0, burst if burst is not None else rate_per_second * 0.25)
        self._clock = clock
        self._tokens = self.capacity
        self._updated = clock()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    async def aclose(self) -> None:
        """Nothing to release: the bucket is this object."""

    def _refill(self, now: float) -> None:
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def pause(self, seconds: float) -> None:
        """The provider said "too fast": nobody sends for ``seconds``, and the bucket starts empty after."""
        now = self._clock()
        self._paused_until = max(self._paused_until, now + seconds)
        self._tokens = 0.0
        self._updated = max(self._updated, self._paused_until)

    async def acquire(self, numbers: int) -> None:
        """Wait until ``numbers`` may go. More than the bucket holds is allowed: it waits for the bucket to
        fill and runs it into debt, which the next caller waits out."""
        need = min(float(numbers), self.capacity)
        debt = float(numbers) - need
        async with self._lock:  # FIFO: asyncio.Lock wakes waiters in order
            while True:
                now = self._clock()
                if now < self._paused_until:
                    await asyncio.sleep(self._paused_until - now)
                    continue
                self._refill(now)
                if self._tokens >= need:
                    self._tokens -= need + debt
                    return
                await asyncio.sleep((need - self._tokens) / self.rate)


# KEYS[1]: the bucket hash. ARGV: rate per second, capacity, need, debt, pause seconds (0: none).
# Returns the seconds to wait before trying again, "0" when the numbers may go (as a string: Lua numbers
# become integers on the way out).
_TAKE_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local rate, capacity = tonumber(ARGV[1]), tonumber(ARGV[2])
local need, debt, pause = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated', 'paused')
local tokens = tonumber(state[1]) or capacity
local updated = tonumber(state[2]) or now
local paused = tonumber(state[3]) or 0
if pause > 0 and now + pause > paused then
  paused = now + pause
  tokens = 0
  updated = paused
end
local answer
if now < paused then
  answer = paused - now
else
  tokens = math.min(capacity, tokens + math.max(0, now - updated) * rate)
  updated = math.max(updated, now)
  if tokens >= need then
    tokens = tokens - need - debt
    answer = 0
  else
    answer = (need - tokens) / rate
  end
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(updated), 'paused', tostring(paused))
redis.call('EXPIRE', KEYS[1], 3600)
return tostring(answer)
"""


class RedisNumberPacer:
    """The bucket of ``NumberPacer`` in Redis, for every worker of the deployment. A pause (the provider
    said "too fast") goes to Redis with this worker's next take, which comes before its next send."""

    def __init__(
        self,
        redis: Redis,
        rate_per_second: float,
        *,
        burst: float | None = None,
        key: str = "tianbao:sms-pacer",
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        self.redis = redis
        self.rate = rate_per_second
        self.capacity = max(1.0, burst if burst is not None else rate_per_second * 0.25)
        self.key = key
        self._script = redis.register_script(_TAKE_SCRIPT)
        self._pause_to_share = 0.0
        self._lock = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        self._pause_to_share = max(self._pause_to_share, seconds)

    async def aclose(self) -> None:
        await self.redis.aclose()

    async def acquire(self, numbers: int) -> None:
        need = min(float(numbers), self.capacity)
        debt = float(numbers) - need
        async with self._lock:  # FIFO in this worker; across workers, whoever Redis serves first
            while True:
                pause, self._pause_to_share = self._pause_to_share, 0.0
                args = [self.rate, self.capacity, need, debt, pause]
                wait = float(await self._script(keys=[self.key], args=args))
                if wait <= 0:
                    return
                await asyncio.sleep(min(wait, 1.0))  # re-asked at least every second: others take too
