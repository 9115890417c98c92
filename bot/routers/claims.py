"""Claims in chat: report a loss, follow "my claims", send evidence later, confirm or object (R-CLM-14)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot, F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    ReplyKeyboardRemove,
)

from backend.chat_actions import ClaimVerb
from backend.claims.schemas import ClaimOut, ClaimReportIn
from bot.client import BackendError
from bot.context import ChatContext
from bot.forms.claim import (
    claim_flow,
    cover_detail,
    evidence_flow,
    is_index,
    is_liability,
    objection_flow,
    remember_policy,
)
from bot.forms.engine import Flow, Form, FormRunner, Io, problem_text
from bot.keyboards import ClaimAction, MenuAction, WarningReport, back_to_menu
from bot.replies import reply_to_query
from bot.routers.forms import chat_of, make_io
from messages import label, render


async def submit_claim(io: Io, form: Form) -> None:
    assert io.state is not None
    policy = form.cache["policy"]
    try:
        if is_index(form):  # R-CLM-2: no report needed; show the township's trigger status instead
            status = await io.backend.index_status(io.identity, policy["id"])
            await io.close_form()
            await io.say(io.t("claims/index_status", status=status, policy=policy))
            return
        claim = await io.backend.report_claim(io.identity, _report_body(form))
    except BackendError as exc:
        # The form stays: the user can correct an answer (back) or try again (confirm).
        await io.say(io.problem(exc.code, _readable(exc.code, exc.detail)))
        return
    await io.close_form()
    await io.say(io.t("claims/reported", claim=claim), ReplyKeyboardRemove())


def _readable(code: str, detail: dict[str, Any]) -> dict[str, Any]:
    """The backend gives the cover's ends as UTC ISO times; the user reads them in the local zone."""
    if code != "loss_outside_cover":
        return detail
    starts = datetime.fromisoformat(str(detail["starts_at"]))
    ends = datetime.fromisoformat(str(detail["ends_at"]))
    return cover_detail(starts, ends)


def _report_body(form: Form) -> ClaimReportIn:
    a, policy = form.answers, form.cache["policy"]
    gps = a.get("claim_gps") or {}
    return ClaimReportIn(
        idempotency_key=form.key,
        policy_id=policy["id"],
        cause="accident" if is_liability(form) else a["cause"],
        loss_started_at=datetime.fromisoformat(a["loss_started_at"]),
        loss_ended_at=datetime.now(UTC) if a.get("loss_end") == "now" else None,
        lost_quantity=str(a.get("lost_quantity") or "0"),
        estimated_amount_yuan=str(a.get("estimated_amount") or "0"),
        place_name=a.get("place_name") or "",
        latitude=gps.get("latitude"),
        longitude=gps.get("longitude"),
        reporter_name=a["reporter"],
        description=a.get("description") or "",
        photo_document_ids=a.get("claim_photos") or [],
        disposal_document_ids=a.get("disposal") or [],
        injured=a.get("injured"),
        dead=a.get("dead"),
        warning_id=a.get("warning_id"),
    )


async def submit_evidence(io: Io, form: Form) -> None:
    assert io.state is not None
    try:
        claim = await io.backend.add_claim_evidence(
            io.identity, int(form.answers["claim_id"]), form.answers["purpose"], form.answers["evidence"]
        )
    except BackendError as exc:
        await io.close_form()
        await io.say(io.problem(exc.code, exc.detail))
        return
    await io.close_form()
    await io.say(io.t("claims/evidence_received", claim=claim))


async def submit_objection(io: Io, form: Form) -> None:
    assert io.state is not None
    await io.close_form()
    try:
        claim = await io.backend.answer_settlement(
            io.identity, int(form.answers["claim_id"]), "object", form.answers["object_reason"]
        )
    except BackendError as exc:
        await io.say(io.problem(exc.code, exc.detail))
        return
    await io.say(io.t("claims/answered", claim=claim))


def flows() -> dict[str, Flow]:
    """This feature's forms, for the runner the dispatcher builds."""
    return {
        "claim": claim_flow(submit_claim),
        "evidence": evidence_flow(submit_evidence),
        "objection": objection_flow(submit_objection),
    }


async def report_menu(
    query: CallbackQuery, ctx: ChatContext, state: FSMContext, bot: Bot, runner: FormRunner
) -> None:
    io = await make_io(bot, chat_of(query), ctx, state, query.message, runner)  # type: ignore[arg-type]
    await open_report(io, ctx, state, runner)


async def report_for_warning(
    query: CallbackQuery,
    callback_data: WarningReport,
    ctx: ChatContext,
    state: FSMContext,
    bot: Bot,
    runner: FormRunner,
) -> None:
    """ "Report a loss" under an official warning: the report carries the warning (``claim.warning_id``)."""
    io = await make_io(bot, chat_of(query), ctx, state, query.message, runner)  # type: ignore[arg-type]
    await open_report(io, ctx, state, runner, warning_id=callback_data.warning_id)


async def open_report(
    io: Io, ctx: ChatContext, state: FSMContext, runner: FormRunner, warning_id: int | None = None
) -> None:
    """Report a loss: from the menu, a warning's button, or typed ("我要报案") at any point; a form under
    way is parked."""
    await ctx.ensure()
    policies = [
        p.model_dump(mode="json") for p in await ctx.backend.my_policies(ctx.key) if p.status == "active"
    ]
    if not policies:
        await io.say(io.t("claims/no_policy"))
        return

    async def prepare(io: Io, form: Form) -> None:
        form.cache["policies"] = policies
        if warning_id is not None:
            form.answers["warning_id"] = warning_id
        if len(policies) == 1:  # one policy: the choice is made for the user
            form.answers["policy"] = policies[0]["id"]
            await remember_policy(io, form, policies[0]["id"])

    await runner.begin(io, state, "claim", prepare=prepare)


CLOSED = ("denied", "paid")  # the backend refuses evidence for these (claim_closed)
EVIDENCE_PURPOSE = {"disposal": "disposal", "photos": "scene", "documents": "requested"}


def claim_buttons(claim: ClaimOut, locale: str) -> InlineKeyboardMarkup:
    rows: list[list[InlineKeyboardButton]] = []
    if claim.next_action == "send_disposal_proof":
        rows.append([_button(label("claims.send_disposal", locale), "disposal", claim.id)])
    if claim.next_action == "send_documents":
        rows.append([_button(label("claims.send_documents", locale), "documents", claim.id)])
    if claim.status not in CLOSED:  # scene photos can be added until the claim is closed
        rows.append([_button(label("claims.add_photos", locale), "photos", claim.id)])
    if claim.next_action == "confirm_amount":
        rows.append(
            [
                _button(label("claims.confirm", locale), "confirm", claim.id, claim.assessed_amount_fen or 0),
                _button(label("claims.object", locale), "object", claim.id, claim.assessed_amount_fen or 0),
            ]
        )
    rows.append(
        [
            InlineKeyboardButton(
                text=label("claims.back_to_list", locale), callback_data=MenuAction(action="claims").pack()
            )
        ]
    )
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _button(text: str, action: ClaimVerb, claim_id: int, amount: int = 0) -> InlineKeyboardButton:
    data = ClaimAction(action=action, claim_id=claim_id, amount=amount).pack()
    return InlineKeyboardButton(text=text, callback_data=data)


async def list_claims(query: CallbackQuery, ctx: ChatContext) -> None:
    text, markup = await claims_list(ctx)
    await reply_to_query(query, text, markup)


async def claims_list(ctx: ChatContext) -> tuple[str, InlineKeyboardMarkup | None]:
    """ "My claims": the message and its buttons (one per claim)."""
    await ctx.ensure()
    locale = await ctx.locale()
    claims = await ctx.backend.my_claims(ctx.key)
    if not claims:
        return render("claims/none", locale), None
    rows = [
        [
            _button(
                label(
                    "claims.claim_item",
                    locale,
                    number=c.number,
                    status=label(f"claims.status_{c.status}", locale),
                ),
                "view",
                c.id,
            )
        ]
        for c in claims
    ]
    return render("claims/list", locale, count=len(claims)), InlineKeyboardMarkup(inline_keyboard=rows)


# What each notice button needs of the claim to still apply: an old notice keeps its buttons after the
# claim moved on (confirmed in "my claims", documents sent, disposal proven, closed).
APPLIES: dict[str, Callable[[ClaimOut], bool]] = {
    "confirm": lambda c: c.next_action == "confirm_amount",
    "object": lambda c: c.next_action == "confirm_amount",
    "disposal": lambda c: c.next_action == "send_disposal_proof",
    "documents": lambda c: c.next_action == "send_documents",
    "photos": lambda c: c.status not in CLOSED,
}
GONE = ("not_found", "claim_not_found")


async def claim_action(
    query: CallbackQuery,
    callback_data: ClaimAction,
    ctx: ChatContext,
    state: FSMContext,
    bot: Bot,
    runner: FormRunner,
) -> None:
    await ctx.ensure()
    locale = await ctx.locale()
    action, claim_id = callback_data.action, callback_data.claim_id
    try:
        if action == "confirm":
            await _confirm(query, ctx, locale, callback_data)
            return
        claim = await ctx.backend.my_claim(ctx.key, claim_id)
        if action == "view":
            await reply_to_query(query, *claim_detail(claim, locale))
        elif not APPLIES[action](claim):
            await _no_longer_applies(query, claim, locale)
        else:
            io = await make_io(bot, chat_of(query), ctx, state, query.message, runner)  # type: ignore[arg-type]
            if action == "object":
                await runner.begin(io, state, "objection", claim_id=claim_id)
            else:
                purpose = EVIDENCE_PURPOSE.get(action, "requested")
                await runner.begin(io, state, "evidence", claim_id=claim_id, purpose=purpose)
    except BackendError as exc:
        if exc.code in GONE:
            await reply_to_query(query, render("claims/not_found", locale), back_to_menu(locale))
            return
        await reply_to_query(query, problem_text(locale, exc.code, exc.detail))


def claim_detail(claim: ClaimOut, locale: str) -> tuple[str, InlineKeyboardMarkup | None]:
    """The claim as "view" shows it (a notice's button, "my claims", a text's link)."""
    return render("claims/detail", locale, claim=claim), claim_buttons(claim, locale)


async def _confirm(query: CallbackQuery, ctx: ChatContext, locale: str, data: ClaimAction) -> None:
    """R-CLM-14: the amount shown with the button is the one confirmed. A claim no longer waiting for a
    confirmation (confirmed already, a second tap, an old notice) says so and shows where it stands."""
    try:
        claim = await ctx.backend.answer_settlement(
            ctx.key, data.claim_id, "confirm", None, data.amount or None
        )
    except BackendError as exc:
        if exc.code != "not_awaiting_confirmation":
            raise
        await _no_longer_applies(query, await ctx.backend.my_claim(ctx.key, data.claim_id), locale)
        return
    await reply_to_query(query, render("claims/answered", locale, claim=claim))


async def _no_longer_applies(query: CallbackQuery, claim: ClaimOut, locale: str) -> None:
    await reply_to_query(query, render("claims/action_gone", locale, claim=claim))
    await reply_to_query(query, render("claims/detail", locale, claim=claim), claim_buttons(claim, locale))


def build_router() -> Router:
    router = Router(name="claims")
    router.callback_query.register(report_menu, MenuAction.filter(F.action == "report"))
    router.callback_query.register(list_claims, MenuAction.filter(F.action == "claims"))
    router.callback_query.register(claim_action, ClaimAction.filter())
    router.callback_query.register(report_for_warning, WarningReport.filter())
    return router


__all__ = [
    "ClaimAction",
    "build_router",
    "flows",
    "remember_policy",
    "submit_claim",
    "submit_evidence",
    "submit_objection",
]
