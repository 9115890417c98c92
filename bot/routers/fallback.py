"""The last router: anything nobody else understood gets a short, helpful answer, never silence."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery, Message

from bot.context import ChatContext
from bot.keyboards import main_menu
from bot.replies import reply_to_query
from messages import render


async def unknown_input(message: Message, ctx: ChatContext) -> None:
    identity = await ctx.ensure()
    await message.answer(render("start/unknown_input", identity.locale), reply_markup=main_menu(identity))


async def stale_button(query: CallbackQuery, ctx: ChatContext) -> None:
    identity = await ctx.ensure()
    await query.answer()
    await reply_to_query(query, render("start/stale_button", identity.locale), main_menu(identity))


def build_router() -> Router:
    router = Router(name="fallback")
    router.message.register(unknown_input)
    router.callback_query.register(stale_button)
    return router
