"""Callback surveys in chat (R-CBK-1): did the payment arrive, is the amount right, how satisfied, anything
to add. The backend keeps the answers (the first answer to a question counts) and says which question
comes next; this router shows it. The notice's buttons and these share ``backend.callbacks.schemas``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import F, Router
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from backend.callbacks import schemas
from backend.callbacks.schemas import CallbackOut
from bot.client import BackendError
from bot.context import ChatContext
from bot.forms.engine import FormRunner, FormState, close_form, problem_text
from bot.keyboards import back_to_menu
from bot.replies import Markup, reply_to_query
from messages import render

STATE_KEY = "callback_comment"  # FSM data: the callback whose free-text question is open


class CallbackAnswer(CallbackData, prefix=schemas.PREFIX):
    """The bot's side of ``schemas.pack``: ``cbk:<callback id>:<question>:<value>``."""

    callback_id: int
    question: str
    value: str


class CallbackSurvey(StatesGroup):
    comment = State()  # "anything to add?": the next text is the answer


async def _fetch(ctx: ChatContext, callback_id: int) -> CallbackOut:
    return await ctx.backend.my_callback(ctx.key, callback_id)


async def _answer(ctx: ChatContext, callback_id: int, question: str, value: str) -> CallbackOut:
    return await ctx.backend.answer_callback(ctx.key, callback_id, question, value)


def question(callback: CallbackOut, locale: str) -> tuple[str, InlineKeyboardMarkup | None]:
    """The question the callback is at, with its buttons (none for the last two)."""
    text = render(
        f"callbacks/question_{callback.next_question}",
        locale,
        claim_number=callback.claim_number,
        amount_fen=callback.amount_fen,
        amount_wrong=callback.amount_correct is False,
    )
    rows = schemas.question_buttons(callback.id, callback.next_question, locale)
    if not rows:
        return text, None
    markup = [
        [InlineKeyboardButton(text=b["text"], callback_data=b["callback_data"]) for b in row] for row in rows
    ]
    return text, InlineKeyboardMarkup(inline_keyboard=markup)


Say = Callable[[str, Markup], Awaitable[Any]]


def _to_message(message: Message) -> Say:
    return lambda text, markup: message.answer(text, reply_markup=markup)


def _to_query(query: CallbackQuery) -> Say:
    """The tapped message's chat, or the user's when that message is gone (``reply_to_query``)."""
    return lambda text, markup: reply_to_query(query, text, markup)


async def show_callback(
    message: Message, ctx: ChatContext, callback_id: int, state: FSMContext | None
) -> None:
    """A text's link (``callback:<id>``) or a notice: the question the callback is at. Raises
    ``BackendError`` when it is not this chat's person's (the caller says "not found")."""
    locale = await ctx.locale()
    callback = await _fetch(ctx, callback_id)
    await _ask(_to_message(message), callback, locale, state)


async def _ask(say: Say, callback: CallbackOut, locale: str, state: FSMContext | None) -> None:
    text, markup = question(callback, locale)
    await say(text, markup or back_to_menu(locale))
    if state is None:
        return
    if callback.next_question == "comment":
        await state.set_state(CallbackSurvey.comment)
        await state.update_data({STATE_KEY: callback.id})
    elif (await state.get_data()).get(STATE_KEY) == callback.id:
        await close_form(state)


async def answer_tap(
    query: CallbackQuery,
    callback_data: CallbackAnswer,
    ctx: ChatContext,
    state: FSMContext,
    runner: FormRunner,
    raw_state: str | None,
) -> None:
    await ctx.ensure()
    locale = await ctx.locale()
    say = _to_query(query)
    try:
        callback = await _answer(ctx, callback_data.callback_id, callback_data.question, callback_data.value)
    except BackendError as exc:
        gone = exc.status == 404
        await say(
            render("callbacks/not_found", locale) if gone else problem_text(locale, exc.code),
            back_to_menu(locale),
        )
        return
    if not callback.recorded:
        await say(render("callbacks/already", locale), None)
    elif _contradicts(callback_data):
        await say(render("callbacks/flagged", locale, not_received=callback.received is False), None)
    if callback.next_question == "comment" and raw_state == FormState.filling.state:
        await runner.park(state)  # the form under way waits as a draft while the comment is typed
    await _ask(say, callback, locale, state)


def _contradicts(data: CallbackAnswer) -> bool:
    return data.question in ("received", "amount") and data.value == schemas.NO


async def comment_text(message: Message, ctx: ChatContext, state: FSMContext) -> None:
    locale = await ctx.locale()
    data: dict[str, Any] = await state.get_data()
    callback_id = int(data.get(STATE_KEY) or 0)
    await close_form(state)
    try:
        callback = await _answer(ctx, callback_id, "comment", (message.text or "").strip()[:1000] or "-")
    except BackendError:
        await message.answer(render("callbacks/not_found", locale), reply_markup=back_to_menu(locale))
        return
    await _ask(_to_message(message), callback, locale, None)


def build_router() -> Router:
    router = Router(name="callbacks")
    router.callback_query.register(answer_tap, CallbackAnswer.filter())
    router.message.register(comment_text, CallbackSurvey.comment, F.text)
    return router


__all__ = ["CallbackAnswer", "build_router", "question", "show_callback"]
