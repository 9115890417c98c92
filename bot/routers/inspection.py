"""Safety inspections in chat (R-LIA-5): the appointment the insurer proposes (confirm, or ask for another
day with the reason and the day), the report's PDF with a "fixed" button per hazard, and the photo that
marks a hazard fixed. The notices' buttons are ``backend.inspections.schemas.pack`` strings; a text's link
opens ``inspection:<id>`` through ``start.show_target``. Another enterprise's inspection does not exist
for this chat (the backend answers 404)."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup

from backend.inspections import schemas
from backend.inspections.schemas import MyInspectionOut
from bot.client import BackendError
from bot.context import ChatContext
from bot.forms.engine import Flow, Form, FormRunner, Io
from bot.forms.inspection import FIX_FLOW, RESCHEDULE_FLOW, fix_flow, reschedule_flow
from bot.inspection_client import InspectionCalls
from bot.keyboards import back_to_menu
from bot.replies import reply_to_query
from bot.routers.forms import chat_of, make_io
from messages import label, render

GONE = frozenset({"not_found"})
MAX_LISTED = 20  # hazards the detail lists, each with its button (the template lists as many)


class InspectionAction(CallbackData, prefix=schemas.PREFIX):
    """``insp:<verb>:<id>:<round>``: the id is the inspection's, or the hazard's for ``fix``."""

    verb: str
    target_id: int
    round: int


def calls(ctx: ChatContext) -> InspectionCalls:
    return InspectionCalls(ctx.backend, ctx.key)


def _button(text: str, verb: str, target_id: int, round_: int = 0) -> InlineKeyboardButton:
    data = InspectionAction(verb=verb, target_id=target_id, round=round_).pack()
    return InlineKeyboardButton(text=text, callback_data=data)


def detail(inspection: MyInspectionOut, locale: str) -> tuple[str, InlineKeyboardMarkup]:
    """The inspection as chat shows it, with the buttons that apply now."""
    rows: list[list[InlineKeyboardButton]] = []
    if inspection.status == "proposed":
        round_ = inspection.appointment_round
        rows.append([_button(label("inspections.confirm", locale), schemas.CONFIRM, inspection.id, round_)])
        rows.append(
            [_button(label("inspections.reschedule", locale), schemas.RESCHEDULE, inspection.id, round_)]
        )
    if inspection.status == "done":
        rows += [
            [_button(label("inspections.fixed_button", locale, n=n), schemas.FIX, h.id)]
            for n, h in enumerate(inspection.hazards[:MAX_LISTED], start=1)
            if h.status == "open"
        ]
    rows.append(back_to_menu(locale).inline_keyboard[0])
    text = render("inspections/detail", locale, inspection=inspection)
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


async def show(ctx: ChatContext, inspection_id: int, locale: str) -> tuple[str, InlineKeyboardMarkup]:
    """For ``start.show_target``: raises ``BackendError`` when it is not this chat's."""
    return detail(await calls(ctx).inspection(inspection_id), locale)


async def action(
    query: CallbackQuery,
    callback_data: InspectionAction,
    ctx: ChatContext,
    state: FSMContext,
    bot: Bot,
    runner: FormRunner,
) -> None:
    await ctx.ensure()
    locale = await ctx.locale()
    try:
        if callback_data.verb == schemas.FIX:
            await _begin_fix(query, callback_data, ctx, state, bot, runner)
            return
        await _on_inspection(query, callback_data, ctx, state, bot, runner, locale)
    except BackendError as exc:
        if exc.code not in GONE:
            raise
        await reply_to_query(query, render("inspections/not_found", locale), back_to_menu(locale))


async def _on_inspection(
    query: CallbackQuery,
    data: InspectionAction,
    ctx: ChatContext,
    state: FSMContext,
    bot: Bot,
    runner: FormRunner,
    locale: str,
) -> None:
    if data.verb == schemas.CONFIRM:
        inspection = await calls(ctx).confirm(data.target_id, data.round)
        if inspection.recorded:
            await reply_to_query(query, render("inspections/confirmed", locale, inspection=inspection))
            return
        await reply_to_query(query, render("inspections/already", locale))
        await reply_to_query(query, *detail(inspection, locale))
        return
    inspection = await calls(ctx).inspection(data.target_id)
    current = inspection.status == "proposed" and data.round == inspection.appointment_round
    if data.verb == schemas.RESCHEDULE and current:
        io = await make_io(bot, chat_of(query), ctx, state, query.message, runner)  # type: ignore[arg-type]
        intro = render("inspections/reschedule_prompt", locale, inspection=inspection)
        await runner.begin(io, state, RESCHEDULE_FLOW, intro=intro, inspection_id=inspection.id)
        return
    if data.verb == schemas.RESCHEDULE:
        await reply_to_query(query, render("inspections/already", locale))
    await reply_to_query(query, *detail(inspection, locale))


async def _begin_fix(
    query: CallbackQuery,
    data: InspectionAction,
    ctx: ChatContext,
    state: FSMContext,
    bot: Bot,
    runner: FormRunner,
) -> None:
    io = await make_io(bot, chat_of(query), ctx, state, query.message, runner)  # type: ignore[arg-type]
    await runner.begin(io, state, FIX_FLOW, hazard_id=data.target_id)


async def submit_reschedule(io: Io, form: Form) -> None:
    """The form's end: one backend call; a refusal (the day passed meanwhile) says why."""
    await io.close_form()
    try:
        inspection = await InspectionCalls(io.backend, io.identity).reschedule(
            int(form.answers["inspection_id"]), str(form.answers["reason"]), str(form.answers["day"])
        )
    except BackendError as exc:
        await io.say(io.problem(exc.code, exc.detail), back_to_menu(io.locale))
        return
    await io.say(io.t("inspections/reschedule_received", inspection=inspection), back_to_menu(io.locale))


async def submit_fix(io: Io, form: Form) -> None:
    await io.close_form()
    try:
        inspection = await InspectionCalls(io.backend, io.identity).fixed(
            int(form.answers["hazard_id"]), int(form.answers["photo"])
        )
    except BackendError as exc:
        text = io.t("inspections/not_found") if exc.code in GONE else io.problem(exc.code, exc.detail)
        await io.say(text, back_to_menu(io.locale))
        return
    await io.say(io.t("inspections/fixed", recorded=inspection.recorded))
    await io.say(*detail(inspection, io.locale))


def flows() -> dict[str, Flow]:
    """This feature's forms, for the runner the dispatcher builds."""
    return {RESCHEDULE_FLOW: reschedule_flow(submit_reschedule), FIX_FLOW: fix_flow(submit_fix)}


def build_router() -> Router:
    router = Router(name="inspection")
    router.callback_query.register(action, InspectionAction.filter())
    return router


__all__ = ["InspectionAction", "build_router", "detail", "flows", "show"]
