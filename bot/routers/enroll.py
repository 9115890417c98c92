"""Enrollment in chat: choose a flow (or arrive by QR code), answer the questions, confirm, pay."""

from __future__ import annotations

from typing import Any

from aiogram import Bot, F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LabeledPrice,
    Message,
    PreCheckoutQuery,
    ReplyKeyboardRemove,
)

from backend.enrollment.schemas import TelegramPaymentIn
from bot.client import BackendError
from bot.context import TELEGRAM, ChatContext
from bot.forms.engine import Flow, Form, FormRunner, Io, problem_text
from bot.forms.enterprise import LIABILITY_PRODUCT, enterprise_flow
from bot.forms.farmer import farmer_flow
from bot.forms.submit import announce, submit_form
from bot.keyboards import EnrollChoice, MenuAction, PayAction
from bot.replies import reply_to_query
from bot.routers.forms import chat_of, make_io
from messages import label, render

FLOW_TITLES = ("farmer", "enterprise")


async def finish(io: Io, form: Form) -> None:
    """The last answer is in: submit, then offer payment (or tell the farmer verification comes first)."""
    assert io.state is not None and io.runner is not None
    application = await submit_form(io, form)
    if application is None:
        await io.runner.save(io.state, form)
        await io.runner.ask_current(io, io.state, form)
        return
    await io.close_form()
    await io.say(io.label("enroll.submitted_keyboard_gone"), ReplyKeyboardRemove())
    await announce(io, application)


def flows() -> dict[str, Flow]:
    """This feature's forms, for the runner the dispatcher builds."""
    return {"farmer": farmer_flow(finish), "enterprise": enterprise_flow(finish)}


# --- entry --------------------------------------------------------------------------------------------


async def enroll_menu(query: CallbackQuery, ctx: ChatContext) -> None:
    await reply_to_query(query, *choose_flow(await ctx.locale()))


def choose_flow(locale: str) -> tuple[str, InlineKeyboardMarkup]:
    """ "Enroll": which kind of cover (farmer or enterprise)."""
    rows = [
        [
            InlineKeyboardButton(
                text=label(f"enroll.flow_{flow}", locale), callback_data=EnrollChoice(flow=flow).pack()
            )
        ]
        for flow in FLOW_TITLES
    ]
    return render("enroll/choose_flow", locale), InlineKeyboardMarkup(inline_keyboard=rows)


async def flow_chosen(
    query: CallbackQuery,
    callback_data: EnrollChoice,
    ctx: ChatContext,
    state: FSMContext,
    bot: Bot,
    runner: FormRunner,
) -> None:
    await ctx.ensure()
    io = await make_io(bot, chat_of(query), ctx, state, query.message, runner)  # type: ignore[arg-type]
    preset: dict[str, Any] = {"product": LIABILITY_PRODUCT} if callback_data.flow == "enterprise" else {}
    await runner.begin(
        io, state, callback_data.flow, intro=io.t(f"enroll/intro_{callback_data.flow}"), **preset
    )


async def open_from_payload(
    message: Message, ctx: ChatContext, state: FSMContext, bot: Bot, runner: FormRunner, payload: str
) -> bool:
    """R-LIA-3: a scanned QR code opens the right enrollment. False when the code is not valid
    (the caller shows the menu; nothing was created)."""
    try:
        scan = await ctx.backend.scan(ctx.key, payload)
    except BackendError as exc:
        locale = await ctx.locale()
        await message.answer(render("enroll/scan_refused", locale, code=exc.code))
        return False
    io = await make_io(bot, message.chat.id, ctx, state, message, runner)
    flow = "enterprise" if scan["product_code"] == LIABILITY_PRODUCT else "farmer"
    preset: dict[str, Any] = {"product": scan["product_code"], "campaign_id": scan["campaign_id"]}
    region = scan.get("region_code")
    if region:
        # A village code on the poster fixes the location; a township or county narrows the picker.
        preset["campaign_village" if not region.endswith("000") else "campaign_region"] = region
    await runner.begin(io, state, flow, intro=io.t(f"enroll/intro_{flow}"), **preset)
    return True


# --- payment (R-ENR-9) -----------------------------------------------------------------------------------


async def pay_button(
    query: CallbackQuery,
    callback_data: PayAction,
    ctx: ChatContext,
    bot: Bot,
    payment_provider: str,
    payment_provider_token: str,
) -> None:
    locale = await ctx.locale()
    provider = payment_provider
    if provider == "telegram" and ctx.key.channel != TELEGRAM:
        provider = "offline"  # web chat cannot show a Telegram invoice
    try:
        started = await ctx.backend.start_payment(ctx.key, callback_data.application_id, provider)
    except BackendError as exc:
        if exc.code == "not_found":  # not this user's, or gone: an old or tampered button
            await reply_to_query(query, render("enroll/application_not_found", locale))
            return
        await reply_to_query(query, problem_text(locale, exc.code, exc.detail))
        return
    if started.already_paid:  # a second tap, or an old "pay now" notice
        await reply_to_query(query, render("enroll/already_paid", locale, policy=started.policy))
    elif started.kind == "instant":
        await reply_to_query(query, render("enroll/paid", locale, started=started, policy=started.policy))
    elif started.kind == "invoice":
        await bot.send_invoice(
            chat_id=chat_of(query),
            title=label("enroll.invoice_title", locale),
            description=render("enroll/invoice_description", locale, started=started),
            payload=started.invoice_payload or "",
            currency=started.currency,
            provider_token=payment_provider_token or None,
            prices=[LabeledPrice(label=label("enroll.invoice_title", locale), amount=started.amount_fen)],
        )
    else:
        await reply_to_query(query, render("enroll/pay_offline", locale, started=started))


async def pre_checkout(query: PreCheckoutQuery, ctx: ChatContext) -> None:
    body = TelegramPaymentIn(
        invoice_payload=query.invoice_payload, total_amount=query.total_amount, currency=query.currency
    )
    try:
        await ctx.backend.telegram_precheck(ctx.key, body)
    except BackendError as exc:
        await query.answer(ok=False, error_message=problem_text(await ctx.locale(), exc.code))
        return
    await query.answer(ok=True)


async def payment_received(message: Message, ctx: ChatContext) -> None:
    paid = message.successful_payment
    assert paid is not None
    body = TelegramPaymentIn(
        invoice_payload=paid.invoice_payload,
        total_amount=paid.total_amount,
        currency=paid.currency,
        telegram_payment_charge_id=paid.telegram_payment_charge_id,
        provider_payment_charge_id=paid.provider_payment_charge_id,
    )
    locale = await ctx.locale()
    try:
        policy = await ctx.backend.telegram_paid(ctx.key, body)
    except BackendError:
        # The money is taken: never leave the payer in silence. Staff reconcile from the payment record.
        await message.answer(render("enroll/paid_pending", locale))
        return
    await message.answer(render("enroll/paid_telegram", locale, policy=policy))


def build_router() -> Router:
    router = Router(name="enroll")
    router.callback_query.register(enroll_menu, MenuAction.filter(F.action == "enroll"))
    router.callback_query.register(flow_chosen, EnrollChoice.filter())
    router.callback_query.register(pay_button, PayAction.filter())
    router.pre_checkout_query.register(pre_checkout)
    router.message.register(payment_received, F.successful_payment)
    return router
