"""Answering a button tap: in the chat of the tapped message, or the user's private chat when that
message is gone (a very old button, or web chat history that was trimmed)."""

from __future__ import annotations

from aiogram.types import (
    CallbackQuery,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None


async def reply_to_query(query: CallbackQuery, text: str, markup: Markup = None) -> Message:
    if isinstance(query.message, Message):
        return await query.message.answer(text, reply_markup=markup)
    assert query.bot is not None
    return await query.bot.send_message(query.from_user.id, text, reply_markup=markup)
