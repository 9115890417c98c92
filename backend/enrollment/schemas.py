"""Enrollment API contract: what the bot submits and what staff act on."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field

from backend.ids import Id


class SignerIn(BaseModel):
    """R-ENR-5: who confirms. ``insured`` is the bound account itself; others carry name and evidence."""

    role: Literal["insured", "relative", "authorised"]
    name: str | None = Field(default=None, max_length=30)
    relation: Literal["parent", "child", "spouse"] | None = None
    authorisation_document_id: Id | None = None


class SignerRolesIn(BaseModel):
    """Who the insured is, as far as the chat knows before asking who confirms (R-ENR-5)."""

    insured_type: Literal["farmer", "large_grower", "family_farm", "organisation", "enterprise"]
    id_number: str = Field(max_length=18)
    phone: str = Field(max_length=20)


class SignerRolesOut(BaseModel):
    roles: list[Literal["insured", "relative", "authorised"]]


class FarmerAnswers(BaseModel):
    insured_type: Literal["farmer", "large_grower", "family_farm", "organisation"] = "farmer"
    name: str = Field(max_length=100)
    id_number: str = Field(max_length=18)  # resident ID, or credit code for organisations
    phone: str = Field(max_length=20)
    village_code: str | None = Field(default=None, max_length=12)
    place_name: str | None = Field(default=None, max_length=100)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    ear_tags: list[str] = Field(default_factory=list, max_length=2000)
    bank_name: str = Field(max_length=50)
    bank_account: str = Field(max_length=30)


class EnterpriseAnswers(BaseModel):
    company_name: str = Field(min_length=2, max_length=200)
    credit_code: str = Field(max_length=18)
    legal_representative: str = Field(max_length=30)
    phone: str = Field(max_length=20)
    address: str = Field(min_length=2, max_length=300)
    industry_code: str = Field(max_length=20)
    employees: int = Field(ge=1, le=100_000)
    accidents_previous_year: int | None = Field(default=None, ge=0, le=1000)  # None: no previous year
    survey: dict[str, str] = Field(default_factory=dict)
    # The enterprise's own account, where a claim is paid (R-CLM-12): its name is the company's name.
    bank_name: str = Field(min_length=2, max_length=50)
    account_name: str = Field(min_length=2, max_length=200)
    bank_account: str = Field(max_length=30)


class ApplicationSubmit(BaseModel):
    idempotency_key: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    product_code: str = Field(max_length=40)
    region_code: str = Field(min_length=12, max_length=12)
    quantity: str = Field(max_length=20)  # mu / heads / birds / m2; employees for liability
    campaign_id: Id | None = None
    disclosure_version: str = Field(max_length=20)
    disclosure_read: bool
    signer: SignerIn
    farmer: FarmerAnswers | None = None
    enterprise: EnterpriseAnswers | None = None


class PremiumOut(BaseModel):
    total_fen: int
    payable_fen: int
    breakdown: dict[str, Any]


class ApplicationOut(BaseModel):
    id: int
    number: str
    status: str
    product_code: str
    kind: str
    insured_name: str
    quantity: str
    sum_insured_fen: int
    premium: PremiumOut
    verification_required: bool
    verification_reasons: list[str]
    created_at: datetime
    policy_id: int | None = None


class PaymentStartIn(BaseModel):
    provider: Literal["demo", "telegram", "offline"]


class PaymentStartOut(BaseModel):
    """How to pay: ``instant`` (demo, already confirmed), ``invoice`` (Telegram Payments) or ``offline``."""

    kind: Literal["instant", "invoice", "offline"]
    demo: bool = False
    application_id: int
    amount_fen: int
    invoice_payload: str | None = None
    title: str | None = None
    currency: str = "CNY"
    policy: PolicyOut | None = None
    # The application was paid before this request: nothing was charged now, no new document is sent.
    already_paid: bool = False


class TelegramPaymentIn(BaseModel):
    invoice_payload: str = Field(max_length=128)
    total_amount: int
    currency: str
    telegram_payment_charge_id: str | None = Field(default=None, max_length=128)
    provider_payment_charge_id: str | None = Field(default=None, max_length=128)


class PolicyOut(BaseModel):
    id: int
    number: str
    product_code: str
    insured_name: str
    quantity: str
    sum_insured_fen: int
    premium_fen: int
    starts_at: datetime
    ends_at: datetime
    status: str
    document_id: int | None
    terms: dict[str, Any]
    late_entry: bool = False
    # A household's own row of a collective policy (``policy_household``): the figures above are the
    # household's, ``document_id`` is its voucher (R-ENR-10), and the policy is changed by a new list, not
    # by an endorsement in chat.
    household_id: int | None = None


class VerificationIn(BaseModel):
    record: str = Field(min_length=5, max_length=2000)
    passed: bool = True
    head_count: int | None = Field(default=None, ge=0)
    land_rights_evidence: str | None = Field(default=None, max_length=200)
    epidemic_prevention: str | None = Field(default=None, max_length=200)
    photo_document_ids: list[Id] = Field(min_length=1, max_length=20)


class OfflinePaymentIn(BaseModel):
    method: Literal["bank_deduction", "government_letter"]
    reference: str = Field(min_length=3, max_length=128)
    amount_fen: int | None = Field(default=None, ge=0)
    note: str | None = Field(default=None, max_length=500)


class EndorsementRequest(BaseModel):
    field: Literal["bank_account", "phone", "quantity"]
    new_value: str = Field(min_length=1, max_length=100)
    bank_name: str | None = Field(default=None, max_length=50)


class EndorsementOut(BaseModel):
    id: int
    number: str
    policy_id: int
    field: str
    old_value_masked: str
    new_value_masked: str
    status: str
    requested_at: datetime
    decided_at: datetime | None
    decision_note: str | None
    document_id: int | None = None


class EndorsementDecision(BaseModel):
    note: str = Field(min_length=2, max_length=500)


class LateEntryIn(BaseModel):
    """R-ENR-6: staff enter an enrollment made offline, late, with a written reason."""

    application: ApplicationSubmit
    enrolled_on: AwareDatetime
    reason: str = Field(min_length=10, max_length=1000)
    payment_reference: str = Field(min_length=3, max_length=128)
    identity_id: Id
    # R-ENR-5: staff never sign. The photo of the paper form the real signer signed (the signer named in
    # ``application.signer``), uploaded with ``POST /api/documents`` as kind ``signed_form``.
    signed_form_document_id: Id


class EarTagCheckIn(BaseModel):
    tags: list[str] = Field(min_length=1, max_length=2000)


class EarTagCheckOut(BaseModel):
    taken: list[str]


class ProblemOut(BaseModel):
    code: str
    message: str
    detail: dict[str, Any] = Field(default_factory=dict)


PaymentStartOut.model_rebuild()
