"""Keep a sender at the provider's rate instead of provoking its ``RequestLimitExceeded``.

A token bucket counted in numbers (a call to 50 numbers takes 50 tokens), shared by every ``send`` of one
provider object. Waiters are served in arrival order, so a large batch cannot starve a one-time code
queued behind it for longer than the batch's own next call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


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
