"""The last router: anything nobody else understood gets a short, helpful answer, never silence."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery, Message

from backend.alerts.schemas import MessageIn
from bot.context import ChatContext
from bot.keyboards import main_menu
from bot.replies import reply_to_query
from messages import render

# Fewer letters than this ("好", "?", a bare number) are not a question for staff.
MIN_LETTERS = 2


def _is_words(text: str) -> bool:
    return not text.startswith("/") and sum(ch.isalpha() for ch in text) >= MIN_LETTERS


async def unknown_input(message: Message, ctx: ChatContext) -> None:
    """Words no step understood ("我家稻子被淹了怎么办") are for a person: they go to the staff of the insured's
    region, who answer in this chat. Anything else (a sticker, a stray command) gets the menu."""
    identity = await ctx.ensure()
    text = (message.text or "").strip()
    if _is_words(text):
        update_key = f"{message.chat.id}:{message.message_id}"
        await ctx.backend.leave_message(ctx.key, MessageIn(text=text[:4000], update_key=update_key))
        reply = render("start/message_forwarded", identity.locale)
    else:
        reply = render("start/unknown_input", identity.locale)
    await message.answer(reply, reply_markup=main_menu(identity))


async def stale_button(query: CallbackQuery, ctx: ChatContext) -> None:
    identity = await ctx.ensure()
    await reply_to_query(query, render("start/stale_button", identity.locale), main_menu(identity))


def build_router() -> Router:
    router = Router(name="fallback")
    router.message.register(unknown_input)
    router.callback_query.register(stale_button)
    return router
