"""Telegram's sending limits, shared by every worker and bot process through Redis when it is configured.

About 30 messages/s for the bot overall, 1/s per private chat and 20/min per group. A sender waits for a
slot instead of provoking 429s; 429s that still come are honoured through ``retry_after``.

Lanes share the budget, so nothing sent in numbers holds up a person's own conversation:

- **reply**: the bot's answers in a conversation (every send of a handler, through
  ``ReplyGateMiddleware``) and outbox messages of priority ``REPLY``. They may use the whole budget.
- **notice**: outbox notices (priority ``NOTICE``: a claim's news, a household's list, many at once after a
  collective upload). They stop ``reply_reserve`` short of the budget (29 of 30 a second), so a reply always
  finds a slot at once, and every reply sent takes one from them.
- **bulk**: fan-outs (priority ``BULK``: warnings, broadcasts, publicity): as notices, or, with paid
  broadcast (``allow_paid_broadcast``), Telegram's paid budget of its own (1,000/s), which leaves the free
  one to replies and notices.

A 429 pauses only the lane that got it: a flood-wait on bulk does not hold a reply back.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.methods import SendDocument, SendInvoice, SendMessage, SendPhoto, TelegramMethod
from aiogram.methods.base import Response, TelegramType
from redis.asyncio import Redis

from backend.outbox.models import Priority

# The methods Telegram's flood control counts (the fake Bot API counts the same ones).
_COUNTED = (SendMessage, SendPhoto, SendDocument, SendInvoice)
# Set while the delivery worker sends: its sends took their slot already (``BotSender``).
OUTBOX_SEND: contextvars.ContextVar[bool] = contextvars.ContextVar("tianbao_outbox_send", default=False)
_SECONDS = {"second": 1.0, "minute": 60.0, "hour": 3600.0}


class Lane(StrEnum):
    REPLY = "reply"  # a conversation's answers, and outbox replies to a person's own action
    NOTICE = "notice"  # outbox notices (a claim's news, a household's list): the free budget less the reserve
    BULK = "bulk"  # fan-outs: as notices, or paid broadcast's own budget when configured


def lane_of(priority: int) -> Lane:
    if priority >= Priority.BULK:
        return Lane.BULK
    return Lane.REPLY if priority <= Priority.REPLY else Lane.NOTICE


@dataclass(frozen=True)
class Rate:
    amount: int
    seconds: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``"30/second"``, ``"20/minute"``."""
        amount, _, unit = text.strip().partition("/")
        return cls(int(amount), _SECONDS[unit.strip().rstrip("s")])

    def less(self, by: int) -> Rate:
        return Rate(max(1, self.amount - by), self.seconds)


# Telegram allows a chat short bursts over its 1/s (the fake Bot API: 3 at once).
REPLY_BURST = Rate(3, 1.0)


@dataclass(frozen=True)
class Window:
    """A sliding window a send is counted in; ``checked`` windows must have room for it."""

    key: str
    rate: Rate
    checked: bool = True


class MemoryWindows:
    """The windows of one process: a log of send times per key."""

    def __init__(self) -> None:
        self._logs: dict[str, deque[float]] = {}

    async def take(self, windows: Sequence[Window]) -> float:
        """0 when the send is counted in every window; else the seconds until the full window frees a slot
        (a sender sleeps exactly that long rather than polling: polling lost 2 % of the budget)."""
        now = time.monotonic()
        logs = [self._logs.setdefault(w.key, deque()) for w in windows]
        wait = 0.0
        for window, log in zip(windows, logs, strict=True):
            while log and log[0] <= now - window.rate.seconds:
                log.popleft()
            if window.checked and len(log) >= window.rate.amount:
                freed_at = log[len(log) - window.rate.amount] + window.rate.seconds
                wait = max(wait, freed_at - now, 0.001)
        if wait:
            return wait
        for log in logs:
            log.append(now)
        if len(self._logs) > 100_000:  # one key per chat: forget the idle ones now and then
            self._logs = {k: v for k, v in self._logs.items() if v and v[-1] > now - 60}
        return 0.0


# All-or-nothing over every window, on Redis's clock: one round trip, atomic across processes (a test in
# one call and a count in the next let two workers both take the last slot).
_TAKE_SCRIPT = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local wait = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[3 * i - 2])
  local window_ms = tonumber(ARGV[3 * i - 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now_ms - window_ms)
  local count = redis.call('ZCARD', key)
  if ARGV[3 * i] == '1' and count >= limit then
    local oldest = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + window_ms - now_ms, 1)
  end
end
if wait > 0 then
  return wait
end
local member = now[1] .. now[2] .. ':' .. ARGV[#ARGV]
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now_ms, member)
  redis.call('PEXPIRE', key, tonumber(ARGV[3 * i - 1]) + 1000)
end
return 0
"""


class RedisWindows:
    """The same windows in Redis, for every worker and bot process of the deployment."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._script = redis.register_script(_TAKE_SCRIPT)
        self._serial = 0

    async def take(self, windows: Sequence[Window]) -> float:
        """As ``MemoryWindows.take``: 0 when counted, else the seconds to wait."""
        self._serial += 1
        args: list[str | int] = []
        for window in windows:
            args += [window.rate.amount, int(window.rate.seconds * 1000), "1" if window.checked else "0"]
        args.append(f"{id(self)}-{self._serial}")
        return float(await self._script(keys=[w.key for w in windows], args=args)) / 1000


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
        self.windows: MemoryWindows | RedisWindows = (
            RedisWindows(Redis.from_url(redis_url)) if redis_url else MemoryWindows()
        )
        self.global_rate = Rate.parse(global_rate)
        self.bulk_rate = self.global_rate.less(reply_reserve)
        self.paid_rate = Rate.parse(paid_rate) if paid_rate else None
        self.chat_rate = Rate.parse(chat_rate)
        self.group_rate = Rate.parse(group_rate)
        self.namespace = namespace
        self._paused_until = dict.fromkeys(Lane, 0.0)

    @property
    def paid_bulk(self) -> bool:
        """Bulk goes out as paid broadcast (``allow_paid_broadcast`` on each message)."""
        return self.paid_rate is not None

    def pause(self, seconds: float, lane: Lane = Lane.BULK) -> None:
        """A flood-wait from Telegram: hold this lane's sends (in this process) for ``seconds``."""
        self._paused_until[lane] = max(self._paused_until[lane], time.monotonic() + seconds)

    def _windows(self, lane: Lane, address: str, burst: bool) -> list[Window]:
        """Where a send of this lane to ``address`` must fit, and is counted. A reply is counted in bulk's
        window too but never waits for it: bulk's share shrinks by every reply, replies keep the reserve."""
        ns = self.namespace
        # A conversation's answer may come in a short burst (a reply and its menu), as Telegram allows;
        # the outbox keeps to one a second in the chat, counted in the same log.
        chat_rate = REPLY_BURST if burst and lane is Lane.REPLY else self.chat_rate
        chat = (
            Window(f"{ns}:group:{address}", self.group_rate)
            if address.startswith("-")
            else Window(f"{ns}:chat:{address}", chat_rate)
        )
        if lane is Lane.REPLY:
            return [
                Window(f"{ns}:global", self.global_rate),
                Window(f"{ns}:global-bulk", self.bulk_rate, checked=False),
                chat,
            ]
        if lane is Lane.BULK and self.paid_rate is not None:
            return [Window(f"{ns}:paid", self.paid_rate), chat]
        return [Window(f"{ns}:global-bulk", self.bulk_rate), Window(f"{ns}:global", self.global_rate), chat]

    async def acquire(
        self, address: str, *, lane: Lane = Lane.BULK, timeout: float = 120.0, burst: bool = False
    ) -> bool:
        """Wait until the bot may send to ``address``; False if no slot came within ``timeout``.
        ``burst``: a handler's answer, which may go a few at once in its chat."""
        deadline = time.monotonic() + timeout
        windows = self._windows(lane, address, burst)
        while time.monotonic() < deadline:
            pause = self._paused_until[lane] - time.monotonic()
            if pause > 0:
                await asyncio.sleep(min(pause, 1.0))
                continue
            wait = await self.windows.take(windows)
            if not wait:
                return True
            # Another sender may take the slot first (then this one is told the next wait); never past
            # the deadline, and back within a second to see a pause.
            await asyncio.sleep(min(wait, 1.0, max(deadline - time.monotonic(), 0.001)))
        return False


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
            await self.gate.acquire(str(chat), lane=Lane.REPLY, timeout=self.wait_seconds, burst=True)
        return await make_request(bot, method)
