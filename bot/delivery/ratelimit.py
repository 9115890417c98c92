"""Telegram's sending limits, shared by every worker and bot process through Redis when it is configured.

About 30 messages/s for the bot overall, 1/s per private chat and 20/min per group. A sender waits for a
slot instead of provoking 429s; 429s that still come are honoured through ``retry_after``.

Two lanes share the budget, so a fan-out never holds up a person's own conversation:

- **reply**: the bot's answers in a conversation (every send of a handler, through
  ``ReplyGateMiddleware``) and outbox messages for one person (priority below bulk). They may use the
  whole budget.
- **bulk**: fan-outs (outbox priority ``BULK``: warnings, broadcasts, publicity). On the free budget they
  stop ``reply_reserve`` short of it (29 of 30 a second), so a reply always finds a slot at once, and every
  reply sent takes one from bulk. With paid broadcast (``allow_paid_broadcast``) bulk has Telegram's paid
  budget of its own (1,000/s) and leaves the free one to replies altogether.

A 429 pauses only the lane that got it: a flood-wait on bulk does not hold a reply back.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from enum import StrEnum
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.methods import SendDocument, SendInvoice, SendMessage, SendPhoto, TelegramMethod
from aiogram.methods.base import Response, TelegramType
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from backend.outbox.models import Priority

# The methods Telegram's flood control counts (the fake Bot API counts the same ones).
_COUNTED = (SendMessage, SendPhoto, SendDocument, SendInvoice)
# Set while the delivery worker sends: its sends took their slot already (``BotSender``).
OUTBOX_SEND: contextvars.ContextVar[bool] = contextvars.ContextVar("tianbao_outbox_send", default=False)


class Lane(StrEnum):
    REPLY = "reply"
    BULK = "bulk"


def lane_of(priority: int) -> Lane:
    return Lane.BULK if priority >= Priority.BULK else Lane.REPLY


def _less(limit: RateLimitItem, by: int) -> RateLimitItem:
    """The same window with ``by`` fewer messages (at least one)."""
    return type(limit)(max(1, limit.amount - by), limit.multiples)


class RateGate:
    def __init__(
        self,
        *,
        redis_url: str = "",
        global_rate: str = "30/second",
        chat_rate: str = "1/second",
        group_rate: str = "20/minute",
        paid_rate: str | None = None,
        reply_reserve: int = 1,
        namespace: str = "tianbao-send",
    ) -> None:
        storage: Storage = (
            RedisStorage(_limits_uri(redis_url), implementation="redispy") if redis_url else MemoryStorage()
        )
        self.limiter = MovingWindowRateLimiter(storage)
        self.global_limit: RateLimitItem = parse(global_rate)
        self.bulk_limit: RateLimitItem = _less(self.global_limit, reply_reserve)
        self.paid_limit: RateLimitItem | None = parse(paid_rate) if paid_rate else None
        self.chat_limit: RateLimitItem = parse(chat_rate)
        self.group_limit: RateLimitItem = parse(group_rate)
        self.namespace = namespace
        self._paused_until = {Lane.REPLY: 0.0, Lane.BULK: 0.0}
        # Test-then-hit over several windows is no atomic step: concurrent senders of this process would
        # all pass the test for the last slot and overshoot the budget (seen: 29.3/s against 29).
        self._lock = asyncio.Lock()

    @property
    def paid_bulk(self) -> bool:
        """Bulk goes out as paid broadcast (``allow_paid_broadcast`` on each message)."""
        return self.paid_limit is not None

    async def _take(self, limit: RateLimitItem, *key: str) -> bool:
        """Test before hitting: a refused attempt must not count against the window."""
        if not await self.limiter.test(limit, self.namespace, *key):
            return False
        return await self.limiter.hit(limit, self.namespace, *key)

    def pause(self, seconds: float, lane: Lane = Lane.BULK) -> None:
        """A flood-wait from Telegram: hold this lane's sends (in this process) for ``seconds``."""
        self._paused_until[lane] = max(self._paused_until[lane], time.monotonic() + seconds)

    def _budget(self, lane: Lane) -> list[tuple[RateLimitItem, str]]:
        """The overall windows a send of this lane must fit in, and is counted in."""
        if lane is Lane.REPLY:
            return [(self.global_limit, "global"), (self.bulk_limit, "global-bulk")]
        if self.paid_limit is not None:
            return [(self.paid_limit, "paid")]
        return [(self.bulk_limit, "global-bulk"), (self.global_limit, "global")]

    async def acquire(self, address: str, *, lane: Lane = Lane.BULK, timeout: float = 120.0) -> bool:
        """Wait until the bot may send to ``address``; False if no slot came within ``timeout``.

        A reply is counted in the bulk window too but never waits for it: bulk's share shrinks by every
        reply, and replies always have the reserve."""
        deadline = time.monotonic() + timeout
        chat_limit = self.group_limit if address.startswith("-") else self.chat_limit
        budget = self._budget(lane)
        needed = budget[:1] if lane is Lane.REPLY else budget
        while time.monotonic() < deadline:
            pause = self._paused_until[lane] - time.monotonic()
            if pause > 0:
                await asyncio.sleep(min(pause, 1.0))
                continue
            if await self._claim(needed, budget, chat_limit, address):
                return True
            await asyncio.sleep(0.02 if lane is Lane.REPLY else 0.05)
        return False

    async def _claim(
        self,
        needed: list[tuple[RateLimitItem, str]],
        budget: list[tuple[RateLimitItem, str]],
        chat_limit: RateLimitItem,
        address: str,
    ) -> bool:
        """The overall budget first (cheap tests), then the chat's own slot, then spend the overall one."""
        async with self._lock:
            if not await self._fits(needed) or not await self._take(chat_limit, "chat", address):
                return False
            for limit, key in budget:
                await self.limiter.hit(limit, self.namespace, key)
            return True

    async def _fits(self, windows: list[tuple[RateLimitItem, str]]) -> bool:
        for limit, key in windows:
            if not await self.limiter.test(limit, self.namespace, key):
                return False
        return True


class ReplyGateMiddleware(BaseRequestMiddleware):
    """A conversation's answers take their slot in the reply lane, so bulk leaves room for them. A slot
    that does not come within ``wait_seconds`` (the whole budget spent by other replies) does not drop
    the answer: it goes anyway and Telegram's own answer decides."""

    def __init__(self, gate: RateGate, *, wait_seconds: float = 2.0) -> None:
        self.gate = gate
        self.wait_seconds = wait_seconds

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if isinstance(method, _COUNTED) and not OUTBOX_SEND.get():
            chat: Any = getattr(method, "chat_id", "")
            await self.gate.acquire(str(chat), lane=Lane.REPLY, timeout=self.wait_seconds)
        return await make_request(bot, method)


def _limits_uri(redis_url: str) -> str:
    return redis_url if redis_url.startswith("async+") else f"async+{redis_url}"
