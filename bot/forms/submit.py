"""Turning a finished form into an application, and offering payment (R-ENR-9)."""

from __future__ import annotations

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from backend.enrollment.schemas import ApplicationOut, ApplicationSubmit, SignerIn
from bot.client import BackendError
from bot.forms.common import yuan
from bot.forms.engine import Form, Io
from bot.forms.enterprise import LIABILITY_PRODUCT, enterprise_payload
from bot.forms.farmer import farmer_payload, farmer_region, quantity_of
from bot.keyboards import PayAction

# A refusal that points at one answer sends the user back to that question (nothing else is lost).
# A code may name a question in either flow: the first one the form has answered is asked again.
STEP_OF_ERROR: dict[str, str | tuple[str, ...]] = {
    "id_length": "id_number",
    "id_characters": "id_number",
    "id_birth_date": "id_number",
    "id_check_character": "id_number",
    "id_region": "id_number",
    "uscc_length": "credit_code",
    "uscc_characters": "credit_code",
    "uscc_check_character": "credit_code",
    "ear_tags_taken": "ear_tags",
    "ear_tags_count": "ear_tags",
    "ear_tags_duplicate": "ear_tags",
    "bank_account_format": ("bank_account", "company_bank_account"),
    "account_name_mismatch": "company_account_name",
    "authorisation_missing": "authorisation",
    "signer_not_insured": "signer",
    "disclosure_outdated": "disclosure",
}


def build_application(form: Form) -> ApplicationSubmit:
    a = form.answers
    signer = SignerIn(
        role=a.get("signer") or "insured",
        name=a.get("signer_name"),
        relation=a.get("signer_relation"),
        authorisation_document_id=a.get("authorisation"),
    )
    common = {
        "idempotency_key": form.key,
        "product_code": a["product"],
        "campaign_id": a.get("campaign_id"),
        "disclosure_version": form.cache.get("disclosure_version", ""),
        "disclosure_read": bool(a.get("disclosure")),
    }
    if form.flow == "enterprise":
        return ApplicationSubmit(
            **common,
            region_code=a["address_region"]["code"],
            quantity=str(a["employees"]),
            signer=SignerIn(role="insured"),
            enterprise=enterprise_payload(form),
        )
    return ApplicationSubmit(
        **common,
        region_code=farmer_region(form),
        quantity=quantity_of(form),
        signer=signer,
        farmer=farmer_payload(form),
    )


async def submit_form(io: Io, form: Form) -> ApplicationOut | None:
    """Submit once per form (the idempotency key makes a double tap harmless). On a refusal that names
    an answer, go back to that question; returns None then."""
    try:
        return await io.backend.submit_application(io.identity, build_application(form))
    except BackendError as exc:
        await io.say(
            io.problem(exc.code, exc.detail)
            if _known(io, exc.code)
            else io.label("enroll_errors.submit_failed")
        )
        named = STEP_OF_ERROR.get(exc.code, ())
        step = next((s for s in ((named,) if isinstance(named, str) else named) if s in form.answers), None)
        if step:
            form.history = form.history[: form.history.index(step)] if step in form.history else form.history
            form.step = step
        return None


def _known(io: Io, code: str) -> bool:
    from messages import labels_for

    return code in labels_for("enroll_errors", io.locale)


def pay_keyboard(io: Io, application: ApplicationOut) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=io.label("enroll.pay_now"),
                    callback_data=PayAction(application_id=application.id).pack(),
                )
            ]
        ]
    )


async def announce(io: Io, application: ApplicationOut) -> None:
    if application.status == "pending_verification":
        reasons = [io.label(f"enroll.verify_reason_{r}") for r in application.verification_reasons]
        await io.say(io.t("enroll/submitted_verification", application=application, reasons=reasons))
        return
    await io.say(
        io.t(
            "enroll/submitted_pay",
            application=application,
            yuan=yuan,
            liability=application.product_code == LIABILITY_PRODUCT,
        ),
        pay_keyboard(io, application),
    )
