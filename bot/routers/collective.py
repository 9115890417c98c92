"""A household of a collective enrollment (R-ENR-1) in chat: its own row (masked numbers), confirmed by
the household (R-ENR-5: its own bound account, or a relative who gives name and relation) or objected to
with a reason, and its voucher (分户凭证, R-ENR-10) as a PDF. Opened by a notice's button or an SMS link
(target ``household:<id>``, ``start.show_target``)."""

from __future__ import annotations

from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)

from backend.enrollment import validation
from backend.enrollment.collective.schemas import HouseholdOut
from backend.refusals import refusal_message
from bot.client import BackendError
from bot.context import ChatContext
from bot.keyboards import MenuAction
from bot.replies import reply_to_query
from messages import label, render

RELATIONS = ("parent", "child", "spouse")


class HouseholdAction(CallbackData, prefix="hh"):
    """``hh:<action>:<household id>``: the backend's notices carry the same (collective/service.py)."""

    action: str  # view | confirm | insured | relative | rel_<relation> | object | voucher
    household_id: int


class HouseholdStates(StatesGroup):
    relative_name = State()
    relation = State()  # the name is kept with a state: data is never saved without one (FormRunner)
    objection = State()


def _button(text: str, action: str, household_id: int) -> list[InlineKeyboardButton]:
    return [
        InlineKeyboardButton(
            text=text, callback_data=HouseholdAction(action=action, household_id=household_id).pack()
        )
    ]


def _home(locale: str) -> list[InlineKeyboardButton]:
    return [
        InlineKeyboardButton(text=label("menu.home", locale), callback_data=MenuAction(action="home").pack())
    ]


async def _household(ctx: ChatContext, household_id: int) -> HouseholdOut:
    data = await ctx.backend.request(
        "GET", f"/api/bot/collective/households/{household_id}", identity=ctx.key
    )
    return HouseholdOut.model_validate(data)


async def _post(ctx: ChatContext, household_id: int, what: str, body: dict[str, Any]) -> HouseholdOut:
    path = f"/api/bot/collective/households/{household_id}/{what}"
    return HouseholdOut.model_validate(await ctx.backend.request("POST", path, identity=ctx.key, json=body))


def household_text(household: HouseholdOut, locale: str) -> tuple[str, InlineKeyboardMarkup]:
    """The row as the household sees it, with what it can do next."""
    product_name = household.product_name_en if locale == "en" else household.product_name_zh
    text = render(
        "collective/household",
        locale,
        h=household,
        product_name=product_name,
        unit=label(f"enroll.unit_{household.unit}", locale),
        status=label(f"collective.status_{household.status}", locale),
    )
    rows = []
    if household.voucher_ready:
        rows.append(_button(label("collective.household_voucher", locale), "voucher", household.id))
    elif household.status != "confirmed":
        rows.append(_button(label("collective.household_confirm", locale), "confirm", household.id))
        if household.status != "objected":
            rows.append(_button(label("collective.household_object", locale), "object", household.id))
    rows.append(_home(locale))
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


async def household_detail(
    ctx: ChatContext, household_id: int, locale: str
) -> tuple[str, InlineKeyboardMarkup]:
    """For ``start.show_target``: raises ``BackendError`` when the row is not this chat's person's."""
    return household_text(await _household(ctx, household_id), locale)


async def view(query: CallbackQuery, callback_data: HouseholdAction, ctx: ChatContext) -> None:
    locale = await ctx.locale()
    try:
        text, markup = await household_detail(ctx, callback_data.household_id, locale)
    except BackendError:
        await reply_to_query(query, render("collective/not_found", locale))
        return
    await reply_to_query(query, text, markup)


async def choose_signer(query: CallbackQuery, callback_data: HouseholdAction, ctx: ChatContext) -> None:
    """R-ENR-5: "I confirm myself" only where the backend would take it; a relative always may."""
    locale = await ctx.locale()
    try:
        household = await _household(ctx, callback_data.household_id)
    except BackendError:
        await reply_to_query(query, render("collective/not_found", locale))
        return
    rows = []
    if "insured" in household.signer_roles:
        rows.append(_button(label("collective.sign_insured", locale), "insured", household.id))
    rows.append(_button(label("collective.sign_relative", locale), "relative", household.id))
    rows.append(_home(locale))
    await reply_to_query(
        query, render("collective/choose_signer", locale), InlineKeyboardMarkup(inline_keyboard=rows)
    )


async def _confirm(
    query: CallbackQuery | Message, ctx: ChatContext, household_id: int, body: dict[str, Any]
) -> None:
    locale = await ctx.locale()
    message = query.message if isinstance(query, CallbackQuery) else query
    try:
        household = await _post(ctx, household_id, "confirmation", body)
    except BackendError as exc:
        text = refusal_message(exc.code, locale, exc.detail)
        if isinstance(query, CallbackQuery):
            await reply_to_query(query, text)
        elif message is not None:
            await message.answer(text)
        return
    relative = body.get("name") if body.get("role") == "relative" else None
    text, markup = household_text(household, locale)
    reply = render("collective/confirmed", locale, relative=relative) + "\n\n" + text
    if isinstance(query, CallbackQuery):
        await reply_to_query(query, reply, markup)
    elif message is not None:
        await message.answer(reply, reply_markup=markup)


async def sign_insured(query: CallbackQuery, callback_data: HouseholdAction, ctx: ChatContext) -> None:
    await _confirm(query, ctx, callback_data.household_id, {"role": "insured"})


async def sign_relative(
    query: CallbackQuery, callback_data: HouseholdAction, ctx: ChatContext, state: FSMContext
) -> None:
    locale = await ctx.locale()
    await state.set_state(HouseholdStates.relative_name)
    await state.update_data(household_id=callback_data.household_id)
    await reply_to_query(query, render("collective/ask_relative_name", locale))


async def relative_name(message: Message, ctx: ChatContext, state: FSMContext) -> None:
    locale = await ctx.locale()
    try:
        name = validation.validate_person_name(message.text or "")
    except validation.ValidationProblem:
        await message.answer(render("collective/name_invalid", locale))
        return
    data = await state.get_data()
    household_id = int(data.get("household_id", 0))
    await state.set_state(HouseholdStates.relation)
    await state.set_data({"relative_name": name, "household_id": household_id})
    rows = [_button(label(f"collective.relation_{r}", locale), f"rel_{r}", household_id) for r in RELATIONS]
    await message.answer(
        render("collective/choose_relation", locale, name=name),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=rows),
    )


async def relation_chosen(
    query: CallbackQuery, callback_data: HouseholdAction, ctx: ChatContext, state: FSMContext
) -> None:
    data = await state.get_data()
    name = data.get("relative_name")
    if not name or int(data.get("household_id", 0)) != callback_data.household_id:
        await choose_signer(query, callback_data, ctx)  # a stale button: ask again
        return
    await state.clear()
    relation = callback_data.action.removeprefix("rel_")
    await _confirm(
        query, ctx, callback_data.household_id, {"role": "relative", "name": name, "relation": relation}
    )


async def ask_objection(
    query: CallbackQuery, callback_data: HouseholdAction, ctx: ChatContext, state: FSMContext
) -> None:
    locale = await ctx.locale()
    await state.set_state(HouseholdStates.objection)
    await state.update_data(household_id=callback_data.household_id)
    await reply_to_query(query, render("collective/ask_objection", locale))


async def objection_typed(message: Message, ctx: ChatContext, state: FSMContext) -> None:
    locale = await ctx.locale()
    household_id = int((await state.get_data()).get("household_id", 0))
    try:
        household = await _post(
            ctx, household_id, "objection", {"reason": (message.text or "").strip()[:500]}
        )
    except BackendError as exc:
        if exc.status == 422 and exc.code not in ("collective_closed", "not_found"):
            await message.answer(render("collective/ask_objection", locale))  # too short: ask again
            return
        await state.clear()
        await message.answer(refusal_message(exc.code, locale, exc.detail))
        return
    await state.clear()
    text, markup = household_text(household, locale)
    await message.answer(render("collective/objected", locale) + "\n\n" + text, reply_markup=markup)


async def send_voucher(
    query: CallbackQuery, callback_data: HouseholdAction, ctx: ChatContext, bot: Bot
) -> None:
    locale = await ctx.locale()
    path = f"/api/bot/collective/households/{callback_data.household_id}/voucher"
    try:
        response = await ctx.backend.send("GET", path, identity=ctx.key)
    except BackendError as exc:
        await reply_to_query(query, refusal_message(exc.code, locale, exc.detail))
        return
    disposition = response.headers.get("content-disposition", "")
    name = (
        disposition.split("''", 1)[-1] if "''" in disposition else f"voucher-{callback_data.household_id}.pdf"
    )
    chat_id = query.message.chat.id if query.message else query.from_user.id
    await bot.send_document(chat_id, BufferedInputFile(response.content, filename=name))


def build_router() -> Router:
    router = Router(name="collective")
    router.callback_query.register(view, HouseholdAction.filter(F.action == "view"))
    router.callback_query.register(choose_signer, HouseholdAction.filter(F.action == "confirm"))
    router.callback_query.register(sign_insured, HouseholdAction.filter(F.action == "insured"))
    router.callback_query.register(sign_relative, HouseholdAction.filter(F.action == "relative"))
    router.callback_query.register(relation_chosen, HouseholdAction.filter(F.action.startswith("rel_")))
    router.callback_query.register(ask_objection, HouseholdAction.filter(F.action == "object"))
    router.callback_query.register(send_voucher, HouseholdAction.filter(F.action == "voucher"))
    router.message.register(relative_name, HouseholdStates.relative_name, F.text)
    router.message.register(objection_typed, HouseholdStates.objection, F.text)
    return router
