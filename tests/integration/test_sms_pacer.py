"""The SMS pacer shared through Redis: several delivery workers together keep the account's rate (the
provider's limit is per account, not per worker), and a "too fast" from the provider holds them all."""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis

from bot.channels.sms.pacing import RedisNumberPacer

RATE = 200.0
BURST = 50.0


def _worker(redis_url: str) -> RedisNumberPacer:
    return RedisNumberPacer(Redis.from_url(redis_url), RATE, burst=BURST, key="tianbao:test-sms-pacer")


async def test_two_workers_together_keep_the_accounts_rate(redis_url: str) -> None:
    first, second = _worker(redis_url), _worker(redis_url)

    async def send(pacer: RedisNumberPacer, calls: int) -> None:
        for _ in range(calls):
            await pacer.acquire(int(BURST))

    started = time.monotonic()
    await asyncio.gather(send(first, 5), send(second, 5))  # 500 numbers in calls of 50
    elapsed = time.monotonic() - started
    # The first call spends the full bucket; the other 450 numbers come at 200/s between the two workers.
    # Each worker alone would have taken half of that (its own bucket at the full rate).
    assert elapsed >= (500 - BURST) / RATE - 0.05, elapsed
    await first.aclose()
    await second.aclose()


async def test_a_pause_one_worker_hears_holds_the_other(redis_url: str) -> None:
    first, second = _worker(redis_url), _worker(redis_url)
    first.pause(0.5)
    started = time.monotonic()
    held = asyncio.create_task(first.acquire(1))  # the pause goes to Redis with this take
    await asyncio.sleep(0.05)
    await second.acquire(1)
    assert time.monotonic() - started >= 0.45  # the other worker waited out the pause too
    await held
    await first.aclose()
    await second.aclose()
