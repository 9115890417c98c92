"""Publicity notices in chat: "公示" (menu or typed) lists the open notices of the user's villages, a notice
shows the household's own row marked, and "提出异议" takes the reason for staff, whose answer comes back
here (pushed through the outbox). The QR code on the board opens a notice with ``/start n_<token>``;
a text's link opens ``notice:<id>`` through ``start.show_target``."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from backend.publicity.schemas import NOTICE_PREFIX, NoticeOut
from bot.client import BackendError
from bot.context import ChatContext
from bot.forms.engine import Flow, Form, FormRunner, Io
from bot.forms.publicity import objection_flow
from bot.keyboards import MenuAction, back_to_menu
from bot.publicity_client import PublicityCalls
from bot.replies import reply_to_query
from bot.routers.forms import chat_of, make_io
from messages import label, render

GONE = frozenset({"not_found"})


class NoticeAction(CallbackData, prefix=NOTICE_PREFIX):
    """``pub:<verb>:<notice id>``: the string ``backend.publicity.schemas.notice_button`` puts on notices."""

    verb: str
    notice_id: int


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
    query: CallbackQuery,
    callback_data: NoticeAction,
    ctx: ChatContext,
    state: FSMContext,
    bot: Bot,
    runner: FormRunner,
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
        io = await make_io(bot, chat_of(query), ctx, state, query.message, runner)  # type: ignore[arg-type]
        intro = render("publicity/object_prompt", locale, n=notice)
        await runner.begin(io, state, "publicity_objection", intro=intro, notice_id=notice.id)
        return
    await reply_to_query(query, *notice_detail(notice, locale))


async def submit_objection(io: Io, form: Form) -> None:
    """The form's end: one backend call; a refusal (the notice closed meanwhile) says why."""
    await io.close_form()
    photo = form.answers.get("publicity_photo")
    try:
        objection = await PublicityCalls(io.backend, io.identity).object_to(
            int(form.answers["notice_id"]),
            str(form.answers["publicity_reason"]),
            int(photo) if photo else None,
        )
    except BackendError as exc:
        await io.say(io.problem(exc.code, exc.detail))
        return
    await io.say(io.t("publicity/objection_received", objection=objection), back_to_menu(io.locale))


def flows() -> dict[str, Flow]:
    """This feature's forms, for the runner the dispatcher builds."""
    return {"publicity_objection": objection_flow(submit_objection)}


def build_router() -> Router:
    router = Router(name="publicity")
    router.callback_query.register(menu_button, MenuAction.filter(F.action == "publicity"))
    router.callback_query.register(notice_action, NoticeAction.filter())
    return router
