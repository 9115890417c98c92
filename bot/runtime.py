"""Everything a bot process needs, wired once: backend client, dispatcher, channels, delivery."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiogram import Bot, Dispatcher
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage
from aiogram.fsm.storage.memory import SimpleEventIsolation
from fastapi import FastAPI
from redis.asyncio import Redis

from backend.chatstore.keys import files_root
from backend.db import Database
from backend.settings import Settings
from backend.throttle import window_store
from bot.channels.sms import SmsProvider, build_provider
from bot.channels.sms.routes import build_callback_router, build_dev_router, build_link_router
from bot.channels.sms.sender import SmsSender, provider_settings
from bot.channels.telegram import build_webhook_router, make_telegram_bot
from bot.channels.webchat import (
    RedisWebChatStore,
    WebChatFiles,
    WebChatFileStore,
    WebChatSession,
    WebChatStore,
)
from bot.channels.webchat.access import WebChatSessions
from bot.channels.webchat.limits import WebChatGuard, WebChatLimits
from bot.channels.webchat.routes import WebChatChannel, build_router, mount_static
from bot.channels.webchat.session import WEBCHAT_BOT_TOKEN
from bot.client import BackendClient
from bot.delivery.ratelimit import RateGate, ReplyGateMiddleware
from bot.delivery.worker import BotSender, DeliveryWorker, Sender
from bot.dispatcher import DEFAULT_BOT_PROPERTIES, create_dispatcher, make_storage
from bot.sqlstore import SqlStorage, SqlWebChatFiles, SqlWebChatStore
from bot.telegram_keeper import Backoff, HealthMiddleware, TelegramHealth

WEBCHAT = "webchat"
TELEGRAM = "telegram"
SMS = "sms"


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
    owned_database: Database | None = None
    telegram_health: TelegramHealth = field(default_factory=lambda: TelegramHealth(enabled=False))
    # How polling and webhook registration retry while Telegram cannot be reached (tests shorten it).
    telegram_backoff: Backoff = field(default_factory=Backoff)
    sms_provider: SmsProvider | None = None
    # Telegram's flood limits for every send of this process: the conversation's replies and the worker's.
    telegram_gate: RateGate | None = None

    def mount(self, app: FastAPI) -> None:
        """Add the web chat (and, in webhook mode, Telegram's webhook) routes to an app, in front of
        the routes it has: FastAPI tries routes in order, and every chat message and every poll of
        the chat page was matched against all the API's routes first (~200 µs a request)."""
        existing = list(app.router.routes)
        app.include_router(build_router(self.webchat))
        mount_static(app)
        app.include_router(build_callback_router(self.backend, self.settings))
        app.include_router(build_link_router())
        if self.settings.sms_provider == "log" and self.settings.profile != "production":
            app.include_router(build_dev_router(self.settings))
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
            senders[TELEGRAM] = BotSender(self.telegram_bot, self.backend, gate=self.telegram_gate)
        senders[SMS] = SmsSender(self.sms(), settings)
        return DeliveryWorker(
            self.backend,
            senders,
            worker_id=worker_id,
            batch_size=settings.delivery_batch_size,
            poll_seconds=settings.delivery_poll_seconds,
            max_parallel_chats=settings.delivery_max_parallel_chats,
        )

    def sms(self) -> SmsProvider:
        """One provider per process: its pacer is this process's share of the provider's rate."""
        if self.sms_provider is None:
            self.sms_provider = build_provider(provider_settings(self.settings))
        return self.sms_provider

    async def close(self) -> None:
        if self.sms_provider is not None:
            await self.sms_provider.aclose()
        await self.webchat_bot.session.close()
        if self.telegram_bot is not None:
            await self.telegram_bot.session.close()
        await self.dispatcher.storage.close()
        for redis in self.extra_closers:
            await redis.aclose()
        if self.owned_database is not None:
            await self.owned_database.dispose()
        await self.backend.close()


@dataclass
class ChatStores:
    """Where conversations, transcripts and files live: Redis (and a shared files volume) when
    configured, so bot replicas and workers share them; else the system's database, so a restart of
    the embedded default (or of PostgreSQL without Redis) keeps them."""

    storage: BaseStorage
    isolation: BaseEventIsolation
    transcript: WebChatStore
    files: WebChatFileStore
    redis: Redis | None = None
    owned_database: Database | None = None


def chat_stores(settings: Settings, db: Database | None = None) -> ChatStores:
    if settings.redis_url:
        storage, isolation = make_storage(settings.redis_url)
        redis = Redis.from_url(settings.redis_url)
        return ChatStores(
            storage,
            isolation,
            RedisWebChatStore(redis, settings.webchat_history_limit),
            WebChatFiles(files_root(settings.var_dir)),
            redis=redis,
        )
    owned = None if db is not None else Database(settings)
    database = db if db is not None else owned
    assert database is not None
    engine = database.engine
    return ChatStores(
        SqlStorage(engine),
        SimpleEventIsolation(),
        SqlWebChatStore(engine, settings.webchat_history_limit),
        SqlWebChatFiles(engine),
        owned_database=owned,
    )


def build_runtime(
    settings: Settings,
    backend: BackendClient,
    *,
    with_telegram: bool | None = None,
    db: Database | None = None,
) -> BotRuntime:
    """``db``: the database of the app this runtime is embedded in (its SQL stores share the engine);
    without it and without Redis, the runtime opens (and closes) its own."""
    stores = chat_stores(settings, db)
    dispatcher = create_dispatcher(
        backend,
        storage=stores.storage,
        isolation=stores.isolation,
        default_locale=settings.default_locale,
        payment_provider=settings.payment_provider,
        payment_provider_token=settings.telegram_payment_provider_token,
    )
    session = WebChatSession(stores.transcript, stores.files, bot_username=settings.bot_username)
    webchat_bot = Bot(token=WEBCHAT_BOT_TOKEN, session=session, default=DEFAULT_BOT_PROPERTIES)
    limits = WebChatLimits.of(settings)
    # The limits' counts: in Redis with the transcripts when configured (every bot replica counts
    # the same chats and addresses), in this process otherwise.
    guard = WebChatGuard(window_store(stores.redis), limits)
    sessions = WebChatSessions(settings.secret_key)  # the page's cookie: a chat id alone grants nothing
    channel = WebChatChannel(dispatcher, webchat_bot, session, limits=limits, guard=guard, sessions=sessions)
    dispatcher["erase_webchat"] = channel.erase_chat  # "my devices" ends a web chat from any channel
    use_telegram = settings.telegram_enabled if with_telegram is None else with_telegram
    telegram_bot = make_telegram_bot(settings) if use_telegram else None
    health = TelegramHealth(enabled=telegram_bot is not None)
    gate = telegram_gate(settings) if telegram_bot is not None else None
    if telegram_bot is not None and gate is not None:
        telegram_bot.session.middleware(HealthMiddleware(health))
        telegram_bot.session.middleware(ReplyGateMiddleware(gate))
    return BotRuntime(
        settings=settings,
        backend=backend,
        dispatcher=dispatcher,
        webchat_bot=webchat_bot,
        webchat_session=session,
        webchat=channel,
        telegram_bot=telegram_bot,
        extra_closers=[stores.redis] if stores.redis is not None else [],
        owned_database=stores.owned_database,
        telegram_health=health,
        telegram_gate=gate,
    )


def telegram_gate(settings: Settings) -> RateGate:
    """One gate per process; with Redis configured its counts are every process's."""
    return RateGate(
        redis_url=settings.redis_url,
        global_rate=settings.telegram_global_rate,
        paid_rate=settings.telegram_paid_global_rate if settings.allow_paid_broadcast else None,
        chat_rate=settings.telegram_chat_rate,
        group_rate=settings.telegram_group_rate,
    )
