"""Publicity notices in chat: "公示" (menu or typed) lists the open notices of the user's villages, a notice
shows the household's own row marked, and "提出异议" takes the reason for staff, whose answer comes back
here (pushed through the outbox). The QR code on the board opens a notice with ``/start n_<token>``;
a text's link opens ``notice:<id>`` through ``start.show_target``."""

from __future__ import annotations

from typing import Any

from aiogram import F, Router
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from backend.publicity.schemas import NOTICE_PREFIX, NoticeOut, ObjectionOut
from backend.refusals import refusal_message
from bot.client import BackendClient, BackendError, IdentityKey
from bot.context import ChatContext
from bot.keyboards import MenuAction, back_to_menu
from bot.replies import reply_to_query
from messages import label, render

GONE = frozenset({"not_found"})
MAX_REASON = 1000


class NoticeAction(CallbackData, prefix=NOTICE_PREFIX):
    """``pub:<verb>:<notice id>``: the string ``backend.publicity.schemas.notice_button`` puts on notices."""

    verb: str
    notice_id: int


class Objection(StatesGroup):
    reason = State()  # the state's data holds notice_id


# --- the backend calls (one per chat step) --------------------------------------------------------------


class PublicityCalls:
    """The bot's publicity routes, through the client's one request path (auth, errors, identity)."""

    def __init__(self, backend: BackendClient, key: IdentityKey) -> None:
        self.backend, self.key = backend, key

    async def _call(self, method: str, path: str, json: Any = None) -> Any:
        return await self.backend._request(method, path, identity=self.key, json=json)

    async def notices(self) -> list[NoticeOut]:
        return [NoticeOut.model_validate(n) for n in await self._call("GET", "/api/bot/publicity/notices")]

    async def notice(self, notice_id: int) -> NoticeOut:
        return NoticeOut.model_validate(await self._call("GET", f"/api/bot/publicity/notices/{notice_id}"))

    async def by_token(self, token: str) -> NoticeOut:
        return NoticeOut.model_validate(await self._call("GET", f"/api/bot/publicity/by-token/{token}"))

    async def object_to(self, notice_id: int, reason: str) -> ObjectionOut:
        data = await self._call(
            "POST", f"/api/bot/publicity/notices/{notice_id}/objections", json={"reason": reason}
        )
        return ObjectionOut.model_validate(data)


def calls(ctx: ChatContext) -> PublicityCalls:
    return PublicityCalls(ctx.backend, ctx.key)


# --- showing ----------------------------------------------------------------------------------------------


def _button(text: str, verb: str, notice_id: int) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=NoticeAction(verb=verb, notice_id=notice_id).pack())


def notice_detail(notice: NoticeOut, locale: str) -> tuple[str, InlineKeyboardMarkup]:
    """The notice as chat shows it: the household's own rows first, marked; "object" while it is open."""
    own = [row for row in notice.rows if row.own]
    others = [row for row in notice.rows if not row.own][: max(30 - len(own), 0)]
    text = render(
        "publicity/notice_chat",
        locale,
        n=notice.model_copy(update={"rows": own + others}),
        hidden=len(notice.rows) - len(own) - len(others),
    )
    rows = []
    if notice.status == "open":
        rows.append([_button(label("publicity.object", locale), "object", notice.id)])
    rows.append(back_to_menu(locale).inline_keyboard[0])
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


async def notices_list(ctx: ChatContext) -> tuple[str, InlineKeyboardMarkup]:
    """ "公示": the open notices of the user's villages, one button each."""
    await ctx.ensure()
    locale = await ctx.locale()
    notices = await calls(ctx).notices()
    if not notices:
        return render("publicity/list_empty", locale), back_to_menu(locale)
    rows = [
        [_button(f"{n.region_name} {label('publicity.kind_' + n.kind, locale)}", "view", n.id)]
        for n in notices
    ]
    rows.append(back_to_menu(locale).inline_keyboard[0])
    return render("publicity/list", locale, notices=notices), InlineKeyboardMarkup(inline_keyboard=rows)


async def menu_button(query: CallbackQuery, ctx: ChatContext) -> None:
    await reply_to_query(query, *await notices_list(ctx))


async def open_by_token(message: Message, ctx: ChatContext, token: str) -> None:
    """The QR code on the board: ``/start n_<token>``."""
    await ctx.ensure()
    locale = await ctx.locale()
    try:
        notice = await calls(ctx).by_token(token)
    except BackendError as exc:
        if exc.code not in GONE:
            raise
        await message.answer(render("publicity/not_found", locale), reply_markup=back_to_menu(locale))
        return
    text, markup = notice_detail(notice, locale)
    await message.answer(text, reply_markup=markup)


# --- objections -------------------------------------------------------------------------------------------


async def notice_action(
    query: CallbackQuery, callback_data: NoticeAction, ctx: ChatContext, state: FSMContext
) -> None:
    await ctx.ensure()
    locale = await ctx.locale()
    try:
        notice = await calls(ctx).notice(callback_data.notice_id)
    except BackendError as exc:
        if exc.code not in GONE:
            raise
        await reply_to_query(query, render("publicity/not_found", locale), back_to_menu(locale))
        return
    if callback_data.verb == "object" and notice.status == "open":
        await state.set_state(Objection.reason)
        await state.update_data(notice_id=notice.id)
        await reply_to_query(query, render("publicity/object_prompt", locale, n=notice))
        return
    await reply_to_query(query, *notice_detail(notice, locale))


async def reason_typed(message: Message, ctx: ChatContext, state: FSMContext) -> None:
    locale = await ctx.locale()
    reason = " ".join((message.text or "").split())[:MAX_REASON]
    if len(reason) < 2:
        await message.answer(render("publicity/reason_too_short", locale))
        return
    notice_id = int((await state.get_data()).get("notice_id") or 0)
    try:
        objection = await calls(ctx).object_to(notice_id, reason)
    except BackendError as exc:
        await state.clear()
        await message.answer(
            render("publicity/not_found", locale)
            if exc.code in GONE
            else refusal_message(exc.code, locale, exc.detail),
            reply_markup=back_to_menu(locale),
        )
        return
    await state.clear()
    await message.answer(
        render("publicity/objection_received", locale, objection=objection), reply_markup=back_to_menu(locale)
    )


def build_router() -> Router:
    router = Router(name="publicity")
    router.callback_query.register(menu_button, MenuAction.filter(F.action == "publicity"))
    router.callback_query.register(notice_action, NoticeAction.filter())
    router.message.register(reason_typed, Objection.reason, F.text)
    return router
