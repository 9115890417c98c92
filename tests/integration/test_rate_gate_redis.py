"""The Telegram rate gate shared in Redis (bot/delivery/ratelimit.py: one Lua script over every window):
two worker processes' gates together never pass the budget, a reply still finds its reserved slot, and a
refused take says how long to wait."""

from __future__ import annotations

import asyncio
import secrets
import time

from bot.delivery.ratelimit import Lane, RateGate


def _gate(redis_url: str, namespace: str) -> RateGate:
    return RateGate(redis_url=redis_url, global_rate="10/second", namespace=namespace)


async def test_two_gates_sharing_redis_never_pass_the_budget_together(redis_url: str) -> None:
    namespace = f"test-gate-{secrets.token_hex(4)}"
    first, second = _gate(redis_url, namespace), _gate(redis_url, namespace)
    tries = [gate.acquire(f"{n}", lane=Lane.BULK, timeout=0.3) for n in range(30) for gate in (first, second)]
    granted = await asyncio.gather(*tries)
    assert granted.count(True) == 9  # 10/s less the reply reserve, in the 0.3 s both had
    started = time.monotonic()
    assert await second.acquire("reply-chat", lane=Lane.REPLY, timeout=0.5)  # the reserve, at once
    assert time.monotonic() - started < 0.2


async def test_a_refused_take_tells_the_wait_until_the_window_frees(redis_url: str) -> None:
    gate = _gate(redis_url, f"test-gate-{secrets.token_hex(4)}")
    assert await gate.acquire("7001", lane=Lane.BULK, timeout=0.1)
    windows = gate._windows(Lane.BULK, "7001", burst=False)  # the same chat: its 1/s window is full
    wait = await gate.windows.take(windows)
    assert 0.5 < wait <= 1.0
    started = time.monotonic()
    assert await gate.acquire("7001", lane=Lane.BULK, timeout=2)
    assert 0.5 < time.monotonic() - started < 1.3  # slept the wait, not a poll loop
