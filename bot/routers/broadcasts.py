"""Broadcasts in chat: the "收到 / Got it" button under a warning records the acknowledgement once (a second
tap says so, another person's tap is refused by the backend), and a text's link opens ``broadcast:<id>``
through ``start.show_target``: the message as the chat would have shown it."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup

from backend.broadcasts.schemas import ACK_PREFIX
from bot.broadcasts_client import BroadcastCalls
from bot.client import BackendError
from bot.context import ChatContext
from bot.keyboards import back_to_menu
from bot.replies import reply_to_query
from messages import label

REFUSED = frozenset({"broadcast_not_yours", "not_found"})


class AckAction(CallbackData, prefix=ACK_PREFIX):
    """``bca:<broadcast id>``: the string ``backend.broadcasts.schemas.ack_button_data`` puts on messages."""

    broadcast_id: int


def calls(ctx: ChatContext) -> BroadcastCalls:
    return BroadcastCalls(ctx.backend, ctx.key)


def markup_of(buttons: list[list[dict[str, str]]], locale: str) -> InlineKeyboardMarkup:
    """The broadcast's own buttons (neutral JSON), then back to the menu."""
    rows = [
        [
            InlineKeyboardButton(text=b["text"], url=b["url"])
            if "url" in b
            else InlineKeyboardButton(text=b["text"], callback_data=b.get("callback_data", ""))
            for b in row
        ]
        for row in buttons
    ]
    return InlineKeyboardMarkup(inline_keyboard=[*rows, *back_to_menu(locale).inline_keyboard])


async def broadcast_detail(ctx: ChatContext, broadcast_id: int) -> tuple[str, InlineKeyboardMarkup]:
    """For ``start.show_target``: raises ``BackendError`` when it was not sent to this chat's person."""
    locale = await ctx.locale()
    shown = await calls(ctx).view(broadcast_id, locale)
    return shown.text, markup_of(shown.buttons, locale)


async def acknowledge(query: CallbackQuery, callback_data: AckAction, ctx: ChatContext) -> None:
    await ctx.ensure()
    locale = await ctx.locale()
    try:
        ack = await calls(ctx).ack(callback_data.broadcast_id)
    except BackendError as exc:
        if exc.code not in REFUSED:
            raise
        await reply_to_query(query, label("errors.broadcast_not_yours", locale), back_to_menu(locale))
        return
    text = label("broadcasts.acked" if ack.first else "broadcasts.acked_again", locale)
    await reply_to_query(query, text)


def build_router() -> Router:
    router = Router(name="broadcasts")
    router.callback_query.register(acknowledge, AckAction.filter())
    return router
