"""Telegram: the same dispatcher behind long polling or a webhook with the secret-token check."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Update
from fastapi import APIRouter, Request, Response, status
from pydantic import ValidationError

from backend.settings import Settings
from bot.dispatcher import DEFAULT_BOT_PROPERTIES

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def make_telegram_bot(settings: Settings) -> Bot:
    api = TelegramAPIServer.from_base(settings.telegram_api_base) if settings.telegram_api_base else None
    session = AiohttpSession(api=api) if api else AiohttpSession()
    return Bot(token=settings.bot_token, session=session, default=DEFAULT_BOT_PROPERTIES)


async def register_webhook(dispatcher: Dispatcher, bot: Bot, settings: Settings) -> None:
    url = settings.webhook_url.rstrip("/")
    if not url.endswith(WEBHOOK_PATH):
        url += WEBHOOK_PATH
    await bot.set_webhook(
        url, secret_token=settings.webhook_secret, allowed_updates=dispatcher.resolve_used_update_types()
    )
    log.info("telegram webhook set to %s", url)


def build_webhook_router(dispatcher: Dispatcher, bot: Bot, secret: str) -> APIRouter:
    router = APIRouter(tags=["telegram"])

    @router.post(WEBHOOK_PATH, include_in_schema=False)
    async def webhook(request: Request) -> Response:
        if request.headers.get(SECRET_HEADER) != secret:
            return Response(status_code=status.HTTP_403_FORBIDDEN)
        try:
            payload: Any = await request.json()
            update = Update.model_validate(payload, context={"bot": bot})
        except (ValueError, ValidationError):
            return Response(status_code=status.HTTP_400_BAD_REQUEST)
        try:
            await dispatcher.feed_update(bot, update)
        except Exception:
            # Telegram retries a failed delivery; the error handler already answered the user.
            log.exception("webhook update %s failed", update.update_id)
        return Response(status_code=status.HTTP_200_OK)

    return router
