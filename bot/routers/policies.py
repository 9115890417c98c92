"""My policies: the list, one policy's details, the e-policy PDF again, and asking for a change
(endorsement, R-ENR-11) through a short form."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aiogram import Bot, F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup

from backend.enrollment import validation
from backend.enrollment.schemas import EndorsementRequest, PolicyOut
from bot.client import BackendError
from bot.context import ChatContext
from bot.forms.common import ProceedStep, product_name, yuan
from bot.forms.engine import Flow, Form, FormRunner, Invalid, Io, nav_row
from bot.forms.farmer import BANKS, BankStep
from bot.forms.parsers import plain_number
from bot.forms.steps import ChoiceStep, TextStep, static_choices, validated
from bot.keyboards import MenuAction, PolicyAction
from bot.replies import reply_to_query
from bot.routers.collective import HouseholdAction
from bot.routers.forms import chat_of, make_io
from messages import label, render

ENDORSABLE = ("bank_account", "phone", "quantity")


def policy_button(policy: PolicyOut, locale: str) -> list[InlineKeyboardButton]:
    text = label("policies.item", locale, number=policy.number, name=policy.insured_name)
    return [
        InlineKeyboardButton(text=text, callback_data=PolicyAction(action="view", policy_id=policy.id).pack())
    ]


async def list_policies(query: CallbackQuery, ctx: ChatContext) -> None:
    text, markup = await policies_list(ctx)
    await reply_to_query(query, text, markup)


async def policies_list(ctx: ChatContext) -> tuple[str, InlineKeyboardMarkup | None]:
    """ "My policies": the message and its buttons (one per policy, then the menu)."""
    await ctx.ensure()
    locale = await ctx.locale()
    policies = await ctx.backend.my_policies(ctx.key)
    if not policies:
        return render("policies/none", locale), None
    rows = [policy_button(p, locale) for p in policies]
    rows.append(
        [
            InlineKeyboardButton(
                text=label("menu.home", locale), callback_data=MenuAction(action="home").pack()
            )
        ]
    )
    return render("policies/list", locale, count=len(policies)), InlineKeyboardMarkup(inline_keyboard=rows)


async def view_policy(query: CallbackQuery, callback_data: PolicyAction, ctx: ChatContext) -> None:
    locale = await ctx.locale()
    try:
        policy = await ctx.backend.my_policy(ctx.key, callback_data.policy_id)
    except BackendError:
        await reply_to_query(query, render("policies/not_found", locale))
        return
    await reply_to_query(query, *await policy_detail(ctx, policy, locale))


async def policy_detail(ctx: ChatContext, policy: PolicyOut, locale: str) -> tuple[str, InlineKeyboardMarkup]:
    """The policy as "view" shows it (from "my policies", or a text's link)."""
    back = InlineKeyboardButton(
        text=label("policies.back", locale), callback_data=MenuAction(action="policies").pack()
    )
    if policy.household_id is not None:
        # A household of a collective policy: its document is its voucher (made on the first tap), and
        # its row changes by the organiser's new list, not by an endorsement in chat.
        voucher = HouseholdAction(action="voucher", household_id=policy.household_id).pack()
        pdf = InlineKeyboardButton(text=label("collective.household_voucher", locale), callback_data=voucher)
        text = render("policies/detail", locale, yuan=yuan, **await policy_facts(ctx, policy, locale))
        return text, InlineKeyboardMarkup(inline_keyboard=[[pdf], [back]])
    rows = [
        [
            InlineKeyboardButton(
                text=label("policies.pdf", locale),
                callback_data=PolicyAction(action="pdf", policy_id=policy.id).pack(),
            )
        ],
        [
            InlineKeyboardButton(
                text=label("policies.endorse", locale),
                callback_data=PolicyAction(action="endorse", policy_id=policy.id).pack(),
            )
        ],
        [back],
    ]
    text = render("policies/detail", locale, yuan=yuan, **await policy_facts(ctx, policy, locale))
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


async def policy_facts(ctx: ChatContext, policy: PolicyOut, locale: str) -> dict[str, Any]:
    """What the detail names beside the stored policy: the cover's name, the quantity's unit and, for
    subsidised cover, the farmer's own share (the policy's premium is the total)."""
    product = await ctx.backend.product(policy.product_code)
    payable = policy.terms.get("payable_fen")
    return {
        "policy": policy,
        "product_name": product_name(product, locale),
        "unit": label(f"enroll.unit_{product['unit']}", locale),
        "self_paid_fen": None if payable is None else int(payable),
    }


async def send_pdf(query: CallbackQuery, callback_data: PolicyAction, ctx: ChatContext, bot: Bot) -> None:
    locale = await ctx.locale()
    try:
        policy = await ctx.backend.my_policy(ctx.key, callback_data.policy_id)
    except BackendError:
        await reply_to_query(query, render("policies/not_found", locale))
        return
    if policy.document_id is None:
        await reply_to_query(query, render("policies/not_found", locale))
        return
    name, content = await ctx.backend.document(ctx.key, policy.document_id)
    chat_id = query.message.chat.id if query.message else query.from_user.id
    await bot.send_document(
        chat_id,
        BufferedInputFile(content, filename=name),
        caption=render("policies/pdf_caption", locale, policy=policy),
    )


# --- endorsement form -----------------------------------------------------------------------------------


def parse_new_value(raw: str, form: Form) -> str:
    field = form.answers["field"]
    if field == "bank_account":
        return str(validated(validation.validate_bank_account, raw))
    if field == "phone":
        digits = "".join(ch for ch in raw if ch.isdigit())
        if len(digits) != 11 or not digits.startswith("1"):
            raise Invalid("phone_not_cn_mobile")
        return digits
    unit = form.answers["unit"]
    quantity = validated(validation.validate_quantity, plain_number(raw, unit), unit)
    if quantity > Decimal(str(form.answers["current_quantity"])):
        # Refused here, not after 确认提交: an increase needs extra premium and maybe a site check
        raise Invalid("endorsement_quantity_increase")
    return str(quantity)


class NewValueStep(TextStep):
    """Names what is changed and what it is now ("现在是 20 亩"), so the new value is typed knowingly."""

    async def ask(self, io: Io, form: Form) -> None:
        a = form.answers
        field = a["field"]
        current = {"quantity": a.get("current_quantity"), **(a.get("current") or {})}.get(field) or ""
        question = io.label(
            f"enroll_ask.new_value_{field}", current=current, unit=io.label(f"enroll.unit_{a['unit']}")
        )
        await io.say(question, InlineKeyboardMarkup(inline_keyboard=[nav_row(io)]))


class EndorseSummary(ProceedStep):
    def __init__(self) -> None:
        super().__init__("summary", "enroll.confirm")

    async def text(self, io: Io, form: Form) -> str:
        value = str(form.answers["new_value"])
        masked = form.answers["field"] == "bank_account"  # shown to whoever holds the phone: mask it
        shown = f"{value[:4]}{'*' * max(len(value) - 8, 0)}{value[-4:]}" if masked else value
        return io.t(
            "policies/endorse_summary",
            new_value_shown=shown,
            a=form.answers,
            field_label=io.label(f"policies.field_{form.answers['field']}"),
        )


async def submit_endorsement(io: Io, form: Form) -> None:
    assert io.state is not None
    a = form.answers
    body = EndorsementRequest(field=a["field"], new_value=a["new_value"], bank_name=a.get("bank_name"))
    await io.close_form()
    try:
        endorsement = await io.backend.request_endorsement(io.identity, int(a["policy_id"]), body)
    except BackendError as exc:
        await io.say(io.problem(exc.code, exc.detail))
        return
    await io.say(
        io.t(
            "policies/endorse_requested",
            endorsement=endorsement,
            field_label=io.label(f"policies.field_{endorsement.field}"),
        )
    )


def endorse_flow() -> Flow:
    return Flow(
        name="endorse",
        submit=submit_endorsement,
        steps=[
            ChoiceStep("field", static_choices("policies.field", ENDORSABLE), columns=1),
            NewValueStep("new_value", parse_new_value),
            BankStep(
                "bank_name",
                static_choices("enroll.bank", BANKS),
                when=lambda f: f.answers.get("field") == "bank_account",
            ),
            EndorseSummary(),
        ],
    )


def flows() -> dict[str, Flow]:
    """This feature's forms, for the runner the dispatcher builds."""
    return {"endorse": endorse_flow()}


async def start_endorsement(
    query: CallbackQuery,
    callback_data: PolicyAction,
    ctx: ChatContext,
    state: FSMContext,
    bot: Bot,
    runner: FormRunner,
) -> None:
    try:
        policy = await ctx.backend.my_policy(ctx.key, callback_data.policy_id)
    except BackendError:
        await reply_to_query(query, render("policies/not_found", await ctx.locale()))
        return
    if policy.household_id is not None:  # an old button: a household's row has no endorsement in chat
        await reply_to_query(query, render("policies/not_found", await ctx.locale()))
        return
    io = await make_io(bot, chat_of(query), ctx, state, query.message, runner)  # type: ignore[arg-type]
    preset: dict[str, Any] = {
        "policy_id": policy.id,
        "unit": policy.terms.get("unit", "mu"),
        "current_quantity": policy.quantity,
        # already masked by the backend: the question shows them to whoever holds the phone
        "current": {"phone": policy.terms.get("phone"), "bank_account": policy.terms.get("bank_account")},
    }
    await runner.begin(io, state, "endorse", **preset)


def build_router() -> Router:
    router = Router(name="policies")
    router.callback_query.register(list_policies, MenuAction.filter(F.action == "policies"))
    router.callback_query.register(view_policy, PolicyAction.filter(F.action == "view"))
    router.callback_query.register(send_pdf, PolicyAction.filter(F.action == "pdf"))
    router.callback_query.register(start_endorsement, PolicyAction.filter(F.action == "endorse"))
    return router
