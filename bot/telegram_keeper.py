"""Keep Telegram running: polling and webhook registration retry with backoff, for ever, and say how
they are doing (``/healthz``: ``telegram: ok | retrying | disabled``).

Telegram unreachable at startup (no network, a Bot API outage, getMe failing) used to kill the
polling task silently, or, in webhook mode, stop the whole process; the web chat and the API have no
need of Telegram and keep serving while this keeps trying in the background.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from aiogram import Bot, Dispatcher
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.methods import DeleteWebhook, GetMe, GetUpdates, Response, SetWebhook, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.utils.backoff import BackoffConfig

from backend.settings import Settings
from bot.channels.telegram import register_webhook

log = logging.getLogger(__name__)

TelegramState = Literal["ok", "retrying", "disabled"]
# The calls that tell whether Telegram is reachable for receiving updates. A failed sendMessage says
# something about that chat (blocked, rate limited), not about Telegram.
_WATCHED: tuple[type[TelegramMethod[Any]], ...] = (GetMe, GetUpdates, SetWebhook, DeleteWebhook)


@dataclass(frozen=True)
class Backoff:
    """Delays between attempts: first, first*factor, ... up to cap, each with ±jitter."""

    first: float = 1.0
    factor: float = 2.0
    cap: float = 60.0
    jitter: float = 0.1

    def delay(self, attempt: int) -> float:
        """The wait after the ``attempt``-th failure in a row (1-based)."""
        base = min(self.cap, self.first * self.factor ** (attempt - 1))
        return base * (1 + random.uniform(-self.jitter, self.jitter))

    def step(self, attempt: int) -> int:
        """Which step of the schedule ``attempt`` is on; attempts at the cap share the last step."""
        step = 1
        while step < attempt and self.first * self.factor ** (step - 1) < self.cap:
            step += 1
        return step

    def for_polling(self) -> BackoffConfig:
        """The same schedule for aiogram's own retries of getUpdates once polling runs."""
        return BackoffConfig(min_delay=self.first, max_delay=self.cap, factor=self.factor, jitter=self.jitter)


class TelegramHealth:
    """What /healthz says about Telegram; fed by the keepers and by every watched Bot API call."""

    def __init__(self, enabled: bool) -> None:
        # Until Telegram has answered once, the honest answer is "retrying" (or about to try).
        self.state: TelegramState = "retrying" if enabled else "disabled"
        self.last_error: str | None = None

    def ok(self) -> None:
        if self.state != "disabled":
            self.state = "ok"
            self.last_error = None

    def failed(self, error: BaseException) -> None:
        if self.state != "disabled":
            self.state = "retrying"
            self.last_error = f"{type(error).__name__}: {error}"

    def disable(self) -> None:
        self.state = "disabled"


class HealthMiddleware(BaseRequestMiddleware):
    """Marks Telegram ok or retrying from the watched calls, including aiogram's own polling loop,
    which retries a failed getUpdates by itself once polling has started."""

    def __init__(self, health: TelegramHealth) -> None:
        self.health = health

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if not isinstance(method, _WATCHED):
            return await make_request(bot, method)
        try:
            response = await make_request(bot, method)
        except Exception as error:
            self.health.failed(error)
            raise
        self.health.ok()
        return response


Sleep = Callable[[float], Awaitable[None]]


async def retry_forever(
    what: str,
    attempt_once: Callable[[], Awaitable[None]],
    health: TelegramHealth,
    backoff: Backoff,
    *,
    sleep: Sleep = asyncio.sleep,
) -> None:
    """Run ``attempt_once`` until it succeeds; after each failure wait the next backoff delay.
    Each failure is logged once, with its step of the schedule and the wait before the next try."""
    attempt = 0
    while True:
        try:
            await attempt_once()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            attempt += 1
            health.failed(error)
            delay = backoff.delay(attempt)
            log.warning(
                "telegram %s failed (%s: %s); retrying in %.3g s (step %d)",
                what,
                type(error).__name__,
                error,
                delay,
                backoff.step(attempt),
            )
            await sleep(delay)
            continue
        if attempt:
            log.info("telegram %s succeeded after %d failed attempts", what, attempt)
        health.ok()
        return


async def keep_polling(
    dispatcher: Dispatcher,
    bot: Bot,
    health: TelegramHealth,
    backoff: Backoff,
    *,
    sleep: Sleep = asyncio.sleep,
) -> None:
    """Long polling until cancelled. getMe and deleteWebhook (a webhook left from another mode would
    block getUpdates) are retried until Telegram answers; then aiogram polls, retrying getUpdates on
    the same schedule. Should polling itself end with an error, it starts over."""

    async def connect() -> None:
        await bot.get_me()
        await bot.delete_webhook(drop_pending_updates=False)

    while True:
        await retry_forever("connection", connect, health, backoff, sleep=sleep)
        log.info("telegram long polling started")
        try:
            await dispatcher.start_polling(
                bot,
                handle_signals=False,
                close_bot_session=False,
                allowed_updates=dispatcher.resolve_used_update_types(),
                backoff_config=backoff.for_polling(),
            )
            return  # stopped on purpose (stop_polling)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            health.failed(error)
            log.warning("telegram polling ended (%s: %s); starting again", type(error).__name__, error)
            await sleep(backoff.delay(1))


async def keep_webhook(
    dispatcher: Dispatcher,
    bot: Bot,
    settings: Settings,
    health: TelegramHealth,
    backoff: Backoff,
    *,
    sleep: Sleep = asyncio.sleep,
) -> None:
    """Register the webhook, retrying until Telegram takes it; the process serves meanwhile."""
    await retry_forever(
        "webhook registration",
        lambda: register_webhook(dispatcher, bot, settings),
        health,
        backoff,
        sleep=sleep,
    )
