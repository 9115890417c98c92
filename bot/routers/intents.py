"""Typed requests that open a feature at any point, also half-way through a form: "我要报案", "理赔进度",
"投保", "我的保单", "公示", "帮助" and their English equivalents (the phrases live in messages/*/intents/labels.json).
A form under way is parked when another form begins, so the draft can be continued later."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aiogram import Bot, F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import Message

from bot.context import ChatContext
from bot.forms.engine import FormRunner
from bot.forms.parsers import normalize_phrase
from bot.keyboards import back_to_menu
from bot.routers import claims, enroll, help_answer, policies, publicity
from bot.routers.forms import make_io
from messages import LOCALES, labels_for

INTENTS = ("report", "claims", "enroll", "policies", "publicity", "help")


@lru_cache(maxsize=1)
def phrases() -> dict[str, str]:
    """Every phrase of every language -> its intent (a farmer may type Chinese in an English chat)."""
    table: dict[str, str] = {}
    for locale in LOCALES:
        for intent, joined in labels_for("intents", locale).items():
            for phrase in joined.split("|"):
                table[normalize_phrase(phrase)] = intent
    return table


def intent_of(text: str) -> str | None:
    return phrases().get(normalize_phrase(text))


def _typed_intent(message: Message) -> dict[str, Any] | bool:
    found = intent_of(message.text or "")
    return {"intent": found} if found else False


async def typed_intent(
    message: Message, intent: str, ctx: ChatContext, state: FSMContext, bot: Bot, runner: FormRunner
) -> None:
    locale = await ctx.locale()
    if intent == "report":
        io = await make_io(bot, message.chat.id, ctx, state, message, runner)
        await claims.open_report(io, ctx, state, runner)
    elif intent == "claims":
        text, markup = await claims.claims_list(ctx)
        await message.answer(text, reply_markup=markup)
    elif intent == "policies":
        text, markup = await policies.policies_list(ctx)
        await message.answer(text, reply_markup=markup)
    elif intent == "publicity":
        text, markup = await publicity.notices_list(ctx)
        await message.answer(text, reply_markup=markup)
    elif intent == "enroll":
        text, choices = enroll.choose_flow(locale)
        await message.answer(text, reply_markup=choices)
    else:
        await message.answer(await help_answer.help_text(ctx, locale), reply_markup=back_to_menu(locale))


def build_router() -> Router:
    router = Router(name="intents")
    router.message.register(typed_intent, F.text, _typed_intent)
    return router
