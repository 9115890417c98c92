"""The dispatcher factory: one dispatcher serves Telegram and web chat alike."""

from __future__ import annotations

import logging

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.enums import ParseMode
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage
from aiogram.fsm.storage.memory import MemoryStorage, SimpleEventIsolation
from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage
from aiogram.types import ErrorEvent
from redis.asyncio import Redis

from bot.client import BackendClient, BackendUnavailable
from bot.context import ChatContextMiddleware
from bot.forms.engine import FormRunner
from bot.replies import AcknowledgeTaps
from bot.routers import (
    broadcasts,
    callbacks,
    claims,
    collective,
    devices,
    enroll,
    fallback,
    forms,
    inspection,
    intents,
    policies,
    publicity,
    start,
)
from messages import normalize_locale, render

log = logging.getLogger(__name__)

DEFAULT_BOT_PROPERTIES = DefaultBotProperties(parse_mode=ParseMode.HTML)


def make_storage(redis_url: str) -> tuple[BaseStorage, BaseEventIsolation]:
    """Redis keeps conversations across restarts and processes; memory serves the embedded default."""
    if redis_url:
        redis = Redis.from_url(redis_url)
        return RedisStorage(redis=redis), RedisEventIsolation(redis=redis)
    return MemoryStorage(), SimpleEventIsolation()


def create_dispatcher(
    backend: BackendClient,
    *,
    storage: BaseStorage,
    isolation: BaseEventIsolation,
    default_locale: str = "zh-CN",
    payment_provider: str = "demo",
    payment_provider_token: str = "",
) -> Dispatcher:
    # One runner for every feature's forms: features hand in their flows here and get the runner back
    # as the ``runner`` handler argument, so no feature imports another to start or answer a form.
    runner = FormRunner(
        {**enroll.flows(), **policies.flows(), **claims.flows(), **publicity.flows(), **inspection.flows()}
    )
    # These reach every handler as keyword arguments (aiogram workflow data).
    dispatcher = Dispatcher(
        storage=storage,
        events_isolation=isolation,
        payment_provider=payment_provider,
        payment_provider_token=payment_provider_token,
        runner=runner,
    )
    context = ChatContextMiddleware(backend, default_locale)
    dispatcher.message.outer_middleware(context)
    dispatcher.callback_query.outer_middleware(AcknowledgeTaps())  # first: before any backend call
    dispatcher.callback_query.outer_middleware(context)
    dispatcher.pre_checkout_query.outer_middleware(context)
    # Feature routers go between start and fallback, in the order they should match.
    dispatcher.include_routers(
        start.build_router(),
        devices.build_router(),
        intents.build_router(),  # typed "我要报案" opens the feature, also in the middle of a form
        forms.build_router(),
        enroll.build_router(),
        policies.build_router(),
        claims.build_router(),
        callbacks.build_router(),
        publicity.build_router(),
        collective.build_router(),
        broadcasts.build_router(),
        inspection.build_router(),
        fallback.build_router(),
    )
    dispatcher.errors.register(_on_error)
    return dispatcher


async def _on_error(event: ErrorEvent, bot: Bot) -> bool:
    """Tell the user something went wrong in their language, instead of leaving them in silence. A tap was
    answered before its handler ran (``AcknowledgeTaps``); answering it again is refused by Telegram and
    left the user with nothing at all, as did a tapped message that is gone (an ``InaccessibleMessage``
    on Telegram, none in web chat): the apology goes to the chat, or to the user."""
    update = event.update
    query = update.callback_query
    user = update.message.from_user if update.message else (query.from_user if query else None)
    locale = normalize_locale(user.language_code if user else None)
    key = "common/service_unavailable" if isinstance(event.exception, BackendUnavailable) else "common/error"
    if not isinstance(event.exception, BackendUnavailable):
        log.exception("handler failed on update %s", update.update_id, exc_info=event.exception)
    if update.message is not None:
        chat_id: int | None = update.message.chat.id
    elif query is not None:
        chat_id = query.message.chat.id if query.message is not None else query.from_user.id
    else:
        chat_id = None
    if chat_id is not None:
        await bot.send_message(chat_id, render(key, locale))
    return True
