"""The enterprise's work-safety liability enrollment (R-LIA-1..4), usually opened by a QR code."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiogram.types import InlineKeyboardMarkup

from backend.enrollment import validation
from bot.forms.common import (
    DisclosureStep,
    ProceedStep,
    YesNoSurveyStep,
    ensure_product,
    parse_bank_account,
    parse_credit_code,
    parse_free_name,
    parse_person_name,
    parse_positive_int,
    product_name,
    yuan,
)
from bot.forms.engine import Choice, Flow, Form, Invalid, Io, Submit, nav_row
from bot.forms.farmer import BANKS, BankStep, mask_account
from bot.forms.steps import ChoiceStep, ContactStep, RegionStep, TextStep, static_choices

LIABILITY_PRODUCT = "work_safety_liability"
ACCIDENT_CHOICES = ("none", "one", "several", "new")
ACCIDENT_COUNTS: dict[str, int | None] = {"none": 0, "one": 1, "several": 2, "new": None}


async def industry_choices(io: Io, form: Form) -> Sequence[Choice]:
    if "industries" not in form.cache:
        form.cache["industries"] = await io.backend.industries()
    return [
        Choice(i["industry_code"], i["name_en"] if io.locale == "en" else i["name_zh"])
        for i in form.cache["industries"]
    ]


def parse_address(raw: str, _form: Form) -> str:
    address = " ".join(raw.split())
    if not 2 <= len(address) <= 200:
        raise Invalid("address_length")
    return address


def parse_account_name(raw: str, form: Form) -> str:
    """The account holder must be the enterprise itself: claims are paid only to the insured's own
    account (R-CLM-12), so a different holder is refused now rather than at the first claim."""
    name = parse_free_name(raw, form)
    company = form.answers.get("company_name", "")
    if validation.registered_name_key(name) != validation.registered_name_key(company):
        raise Invalid("account_name_mismatch", account_name=name, company=company)
    return name


class AccountNameStep(TextStep):
    """Names the enterprise in the question, so the user sees what the account name must be."""

    async def ask(self, io: Io, form: Form) -> None:
        markup = InlineKeyboardMarkup(inline_keyboard=[nav_row(io)])
        text = io.label(f"enroll_ask.{self.name}", company_name=form.answers.get("company_name", ""))
        await io.say(text, markup)


def accidents_previous_year(form: Form) -> int | None:
    return ACCIDENT_COUNTS[form.answers["accidents"]]


class LiabilityQuoteStep(ProceedStep):
    """Base rate from the unified table (R-LIA-1), the floating factor (R-LIA-2) and the premium."""

    def __init__(self) -> None:
        super().__init__("quote", "enroll.continue")

    async def text(self, io: Io, form: Form) -> str:
        product = await ensure_product(io, form)
        body = {
            "employees": form.answers["employees"],
            "industry_code": form.answers["industry"],
            "accidents_previous_year": accidents_previous_year(form),
        }
        quote = await io.backend.quote(product["code"], body)
        form.cache["quote"] = quote
        return io.t(
            "enroll/quote_liability",
            quote=quote,
            product_name=product_name(product, io.locale),
            employees=form.answers["employees"],
            yuan=yuan,
            sample=product.get("sample", False),
            factor_reason=io.label(f"enroll.factor_{quote['factor_reason']}"),
        )


class EnterpriseSummaryStep(ProceedStep):
    def __init__(self) -> None:
        super().__init__("summary", "enroll.confirm")

    async def text(self, io: Io, form: Form) -> str:
        a = form.answers
        industry = next((c.label for c in await industry_choices(io, form) if c.value == a["industry"]), "")
        return io.t(
            "enroll/summary_enterprise",
            a=a,
            industry=industry,
            quote=form.cache.get("quote", {}),
            yuan=yuan,
            accidents=io.label(f"enroll.accidents_{a['accidents']}"),
            masked_account=mask_account(a.get("company_bank_account", "")),
            region=(a.get("address_region") or {}).get("name", ""),
            risky=sum(1 for v in (a.get("survey") or {}).values() if v == "no"),
        )


def enterprise_flow(submit: Submit) -> Flow:
    return Flow(
        name="enterprise",
        submit=submit,
        steps=[
            TextStep("company_name", parse_free_name),
            TextStep("credit_code", parse_credit_code),
            TextStep("legal_representative", parse_person_name),
            ContactStep("phone"),
            RegionStep("address_region", target=4),
            TextStep("address_detail", parse_address),
            ChoiceStep("industry", industry_choices),
            TextStep("employees", parse_positive_int),
            ChoiceStep("accidents", static_choices("enroll.accidents", ACCIDENT_CHOICES), columns=1),
            YesNoSurveyStep("survey"),
            # Where a claim is paid: asked at enrollment, so staff never find no account at payment.
            BankStep("company_bank_name", static_choices("enroll.bank", BANKS)),
            AccountNameStep("company_account_name", parse_account_name),
            TextStep("company_bank_account", parse_bank_account),
            LiabilityQuoteStep(),
            DisclosureStep(),
            EnterpriseSummaryStep(),
        ],
    )


def enterprise_payload(form: Form) -> dict[str, Any]:
    a = form.answers
    survey = {code: answer for code, answer in (a.get("survey") or {}).items()}
    return {
        "company_name": a["company_name"],
        "credit_code": a["credit_code"],
        "legal_representative": a["legal_representative"],
        "phone": a["phone"],
        "address": f"{(a.get('address_region') or {}).get('name', '')} {a['address_detail']}".strip(),
        "industry_code": a["industry"],
        "employees": a["employees"],
        "accidents_previous_year": accidents_previous_year(form),
        "survey": survey,
        "bank_name": a["company_bank_name"],
        "account_name": a["company_account_name"],
        "bank_account": a["company_bank_account"],
    }


def masked_credit_code(code: str) -> str:
    return validation.mask_id_number(code)
