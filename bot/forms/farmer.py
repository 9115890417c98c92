"""The farmer's enrollment (individual, R-ENR-1/2): crops, livestock, facilities, weather-index fruit."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from backend.enrollment import validation
from bot.forms.common import (
    DisclosureStep,
    ProceedStep,
    ensure_product,
    parse_bank_account,
    parse_credit_code,
    parse_free_name,
    parse_person_name,
    parse_resident_id,
    product_name,
    yuan,
)
from bot.forms.engine import Choice, Flow, Form, Io, Submit
from bot.forms.parsers import plain_number
from bot.forms.steps import (
    ChoiceStep,
    ContactStep,
    EarTagsStep,
    LocationStep,
    PhotoStep,
    RegionStep,
    TextStep,
    static_choices,
    validated,
)

INSURED_TYPES = ("farmer", "large_grower", "family_farm", "organisation")
BANKS = ("abc", "rcc", "psbc", "icbc", "ccb", "boc")
SIGNERS = ("insured", "relative", "authorised")
RELATIONS = ("parent", "child", "spouse")


async def product_choices(io: Io, form: Form) -> Sequence[Choice]:
    if "products" not in form.cache:
        form.cache["products"] = await io.backend.products("agricultural")
    return [
        Choice(p["code"], product_name(p, io.locale)) for p in form.cache["products"] if p.get("active", True)
    ]


def is_organisation(form: Form) -> bool:
    return form.answers.get("insured_type") == "organisation"


def parse_insured_name(raw: str, form: Form) -> str:
    return parse_free_name(raw, form) if is_organisation(form) else parse_person_name(raw, form)


def parse_id_number(raw: str, form: Form) -> str:
    """R-ENR-3: a resident ID for people, the unified social credit code for organisations."""
    return parse_credit_code(raw, form) if is_organisation(form) else parse_resident_id(raw, form)


def parse_quantity(raw: str, form: Form) -> str:
    unit = form.cache["product"]["unit"]
    return str(validated(validation.validate_quantity, plain_number(raw, unit), unit))  # "20亩" too


class QuantityStep(TextStep):
    async def ask(self, io: Io, form: Form) -> None:
        await ensure_product(io, form)
        await super().ask(io, form)


def needs_ear_tags(form: Form) -> bool:
    product = form.cache.get("product") or {}
    return bool(product.get("needs_ear_tags"))


async def signer_choices(io: Io, form: Form) -> Sequence[Choice]:
    """R-ENR-5: "I confirm myself" only when this account is the insured's own (the backend decides)."""
    a = form.answers
    insured = {
        "insured_type": a.get("insured_type", "farmer"),
        "id_number": a["id_number"],
        "phone": a["phone"],
    }
    key = "signer_roles:" + "|".join(insured.values())
    if key not in form.cache:
        form.cache[key] = await io.backend.signer_roles(io.identity, insured)
    return [Choice(role, io.label(f"enroll.signer_{role}")) for role in SIGNERS if role in form.cache[key]]


class BankStep(ChoiceStep):
    """Common rural banks as buttons; any other bank's name can be typed."""

    async def on_text(self, io: Io, form: Form, text: str) -> Any:
        name = text.strip()
        for choice in await self.choices(io, form):
            if name == choice.label:
                return choice.label
        if not 2 <= len(name) <= 50:
            from bot.forms.engine import Invalid

            raise Invalid("bank_name_length")
        return name

    async def on_pick(self, io: Io, form: Form, value: str) -> Any:
        await super().on_pick(io, form, value)
        return io.label(f"enroll.bank_{value}")


class AgriQuoteStep(ProceedStep):
    """The premium with each subsidy and the farmer's own share (R-ENR-2)."""

    def __init__(self) -> None:
        super().__init__("quote", "enroll.continue")

    async def text(self, io: Io, form: Form) -> str:
        product = await ensure_product(io, form)
        quote = await io.backend.quote(product["code"], {"quantity": form.answers["quantity"]})
        form.cache["quote"] = quote
        return io.t(
            "enroll/quote_agricultural",
            quote=quote,
            product_name=product_name(product, io.locale),
            quantity=form.answers["quantity"],
            unit=form.cache["unit_label"],
            yuan=yuan,
            sample=product.get("sample", False),
        )


class FarmerSummaryStep(ProceedStep):
    def __init__(self) -> None:
        super().__init__("summary", "enroll.confirm")

    async def text(self, io: Io, form: Form) -> str:
        answers = form.answers
        return io.t(
            "enroll/summary_farmer",
            a=answers,
            product_name=form.cache.get("product_name", ""),
            unit=form.cache.get("unit_label", ""),
            quote=form.cache.get("quote", {}),
            yuan=yuan,
            masked_id=validation.mask_id_number(answers["id_number"]),
            masked_account=mask_account(answers["bank_account"]),
            insured_type=io.label(f"enroll.insured_type_{answers['insured_type']}"),
            signer=io.label(f"enroll.signer_{answers['signer']}"),
            relation=io.label(f"enroll.relation_{answers['signer_relation']}")
            if answers.get("signer_relation")
            else "",
        )


def mask_account(account: str) -> str:
    return f"{account[:4]}{'*' * max(len(account) - 8, 0)}{account[-4:]}"


def farmer_flow(submit: Submit) -> Flow:
    return Flow(
        name="farmer",
        submit=submit,
        steps=[
            ChoiceStep(
                "product",
                product_choices,
                when=lambda f: "product" not in f.answers or f.answers.get("product") is None,
            ),
            ChoiceStep("insured_type", static_choices("enroll.insured_type", INSURED_TYPES)),
            TextStep("name", parse_insured_name),
            TextStep("id_number", parse_id_number),
            ContactStep("phone"),
            QuantityStep("quantity", parse_quantity),
            RegionStep("location", target=5, when=lambda f: not f.answers.get("campaign_village")),
            LocationStep("gps"),
            EarTagsStep("ear_tags", when=needs_ear_tags),
            BankStep("bank_name", static_choices("enroll.bank", BANKS)),
            TextStep("bank_account", parse_bank_account),
            AgriQuoteStep(),
            DisclosureStep(),
            ChoiceStep("signer", signer_choices, columns=1),
            TextStep("signer_name", parse_person_name, when=lambda f: f.answers.get("signer") != "insured"),
            ChoiceStep(
                "signer_relation",
                static_choices("enroll.relation", RELATIONS),
                when=lambda f: f.answers.get("signer") == "relative",
            ),
            PhotoStep("authorisation", when=lambda f: f.answers.get("signer") == "authorised"),
            FarmerSummaryStep(),
        ],
    )


def farmer_payload(form: Form) -> dict[str, Any]:
    """The ``farmer`` part of the application, from the answers."""
    a = form.answers
    location = a.get("location") or {}
    gps = a.get("gps") or {}
    return {
        "insured_type": a["insured_type"],
        "name": a["name"],
        "id_number": a["id_number"],
        "phone": a["phone"],
        "village_code": location.get("code") or a.get("campaign_village"),
        "latitude": gps.get("latitude"),
        "longitude": gps.get("longitude"),
        "ear_tags": a.get("ear_tags") or [],
        "bank_name": a["bank_name"],
        "bank_account": a["bank_account"],
    }


def farmer_region(form: Form) -> str:
    location = form.answers.get("location") or {}
    return str(
        location.get("code") or form.answers.get("campaign_village") or form.answers.get("campaign_region")
    )


def quantity_of(form: Form) -> str:
    return str(Decimal(str(form.answers["quantity"])))
