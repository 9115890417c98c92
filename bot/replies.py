"""Answering a button tap: the tap is acknowledged first, whatever comes next; the answer goes to the chat
of the tapped message, or the user's private chat when that message is gone (a very old button, or web
chat history that was trimmed)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    TelegramObject,
)

log = logging.getLogger(__name__)

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None


async def reply_to_query(query: CallbackQuery, text: str, markup: Markup = None) -> Message:
    if isinstance(query.message, Message):
        return await query.message.answer(text, reply_markup=markup)
    assert query.bot is not None
    return await query.bot.send_message(query.from_user.id, text, reply_markup=markup)


class AcknowledgeTaps(BaseMiddleware):
    """Every callback query is answered, once, before any handler runs: Telegram shows a spinner on the
    button until then, and a handler that answered only after its backend call left the spinner turning
    for as long as the backend took (and for ever when it failed). A query Telegram no longer accepts
    (older than its answer window, e.g. updates queued while the bot was down) still gets its reply."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if isinstance(event, CallbackQuery):
            try:
                await event.answer()
            except TelegramBadRequest as exc:
                log.info("callback query %s not answerable: %s", event.id, exc.message)
        return await handler(event, data)
