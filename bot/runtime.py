"""Everything a bot process needs, wired once: backend client, dispatcher, channels, delivery."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aiogram import Bot, Dispatcher
from fastapi import FastAPI
from redis.asyncio import Redis

from backend.settings import Settings
from bot.channels.telegram import build_webhook_router, make_telegram_bot
from bot.channels.webchat import MemoryWebChatStore, RedisWebChatStore, WebChatFiles, WebChatSession
from bot.channels.webchat.routes import WebChatChannel, build_router, mount_static
from bot.channels.webchat.session import WEBCHAT_BOT_TOKEN
from bot.client import BackendClient
from bot.delivery.ratelimit import RateGate
from bot.delivery.worker import BotSender, DeliveryWorker, Sender
from bot.dispatcher import DEFAULT_BOT_PROPERTIES, create_dispatcher, make_storage

WEBCHAT = "webchat"
TELEGRAM = "telegram"


@dataclass
class BotRuntime:
    settings: Settings
    backend: BackendClient
    dispatcher: Dispatcher
    webchat_bot: Bot
    webchat_session: WebChatSession
    webchat: WebChatChannel
    telegram_bot: Bot | None = None
    extra_closers: list[Redis] = field(default_factory=list)

    def mount(self, app: FastAPI) -> None:
        """Add the web chat (and, in webhook mode, Telegram's webhook) routes to an app, in front of
        the routes it has: FastAPI tries routes in order, and every chat message and every poll of
        the chat page was matched against all the API's routes first (~200 µs a request)."""
        existing = list(app.router.routes)
        app.include_router(build_router(self.webchat))
        mount_static(app)
        if self.telegram_bot is not None and self.settings.webhook_url:
            app.include_router(
                build_webhook_router(self.dispatcher, self.telegram_bot, self.settings.webhook_secret)
            )
        added = app.router.routes[len(existing) :]
        app.router.routes[:] = [*added, *existing]

    def delivery_worker(self, *, worker_id: str | None = None) -> DeliveryWorker:
        settings = self.settings
        senders: dict[str, Sender] = {WEBCHAT: BotSender(self.webchat_bot, self.backend, gate=None)}
        if self.telegram_bot is not None:
            gate = RateGate(
                redis_url=settings.redis_url,
                global_rate=settings.telegram_paid_global_rate
                if settings.allow_paid_broadcast
                else settings.telegram_global_rate,
                chat_rate=settings.telegram_chat_rate,
                group_rate=settings.telegram_group_rate,
            )
            senders[TELEGRAM] = BotSender(self.telegram_bot, self.backend, gate=gate)
        return DeliveryWorker(
            self.backend,
            senders,
            worker_id=worker_id,
            batch_size=settings.delivery_batch_size,
            poll_seconds=settings.delivery_poll_seconds,
        )

    async def close(self) -> None:
        await self.webchat_bot.session.close()
        if self.telegram_bot is not None:
            await self.telegram_bot.session.close()
        await self.dispatcher.storage.close()
        for redis in self.extra_closers:
            await redis.aclose()
        await self.backend.close()


def build_runtime(
    settings: Settings, backend: BackendClient, *, with_telegram: bool | None = None
) -> BotRuntime:
    storage, isolation = make_storage(settings.redis_url)
    dispatcher = create_dispatcher(
        backend,
        storage=storage,
        isolation=isolation,
        default_locale=settings.default_locale,
        payment_provider=settings.payment_provider,
        payment_provider_token=settings.telegram_payment_provider_token,
    )
    closers: list[Redis] = []
    if settings.redis_url:
        redis = Redis.from_url(settings.redis_url)
        closers.append(redis)
        store: MemoryWebChatStore | RedisWebChatStore = RedisWebChatStore(
            redis, settings.webchat_history_limit
        )
    else:
        store = MemoryWebChatStore(settings.webchat_history_limit)
    session = WebChatSession(
        store, WebChatFiles(Path(settings.var_dir) / "webchat"), bot_username=settings.bot_username
    )
    webchat_bot = Bot(token=WEBCHAT_BOT_TOKEN, session=session, default=DEFAULT_BOT_PROPERTIES)
    channel = WebChatChannel(
        dispatcher, webchat_bot, session, max_upload_bytes=settings.webchat_max_upload_bytes
    )
    use_telegram = settings.telegram_enabled if with_telegram is None else with_telegram
    telegram_bot = make_telegram_bot(settings) if use_telegram else None
    return BotRuntime(
        settings=settings,
        backend=backend,
        dispatcher=dispatcher,
        webchat_bot=webchat_bot,
        webchat_session=session,
        webchat=channel,
        telegram_bot=telegram_bot,
        extra_closers=closers,
    )
