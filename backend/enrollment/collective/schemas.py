"""Collective enrollment contract: staff upload and follow a household list; the bot shows a household
its own row (masked), takes its confirmation or objection, and hands out its voucher."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from backend.enrollment.schemas import SignerIn

OrganiserKind = Literal["village_committee", "organisation"]


class ProblemOut(BaseModel):
    """One bad cell: its line (the header is line 1), its column (key and header text) and the reason."""

    line: int
    column: str
    column_label: str
    code: str
    reason: str
    detail: dict[str, str] = Field(default_factory=dict)


class ListReportOut(BaseModel):
    ok: bool
    rows: int
    problems: list[ProblemOut]


class ListRefusedOut(BaseModel):
    """A 422 of the upload: a refusal (``detail`` as every refusal has it; for a list with bad rows its
    code is ``list_has_errors``), with the report when rows were checked."""

    detail: dict[str, Any] | list[Any]
    ok: bool = False
    rows: int = 0
    problems: list[ProblemOut] = Field(default_factory=list)


class CollectiveOut(BaseModel):
    id: int
    application_id: int
    application_number: str
    policy_id: int | None
    policy_number: str | None
    product_code: str
    region_code: str
    organiser_kind: str
    organiser_name: str
    status: str
    household_count: int
    total_quantity: str
    sum_insured_fen: int
    premium_total_fen: int
    farmers_fen: int  # what the households pay together (R-ENR-9: before the policy)
    uploaded_at: datetime
    organiser_confirmed_at: datetime | None
    organiser_confirmed_by_name: str | None
    stamp_document_id: int | None
    households_confirmed: int
    households_objected: int
    already_uploaded: bool = False


class HouseholdStaffOut(BaseModel):
    """A household row as staff see it: the numbers masked (the full ones stay in the database)."""

    id: int
    line: int
    name: str
    id_number_masked: str
    phone_masked: str
    quantity: str
    village_code: str
    place_name: str
    ear_tags: list[str]
    bank_name: str
    bank_account_masked: str
    premium_total_fen: int
    farmer_fen: int
    status: str
    signer: dict[str, str | None] | None
    confirmed_at: datetime | None
    objection_reason: str | None
    objection_answer: str | None = None


class CollectivePaymentIn(BaseModel):
    """The organiser paid the households' shares (bank deduction), or the authority's letter says the
    government pays all (R-ENR-9)."""

    method: Literal["bank_deduction", "government_letter"]
    reference: str = Field(min_length=3, max_length=128)
    amount_fen: int | None = Field(default=None, ge=0)
    note: str | None = Field(default=None, max_length=500)


class HouseholdOut(BaseModel):
    """What the household itself sees of its row in chat."""

    id: int
    organiser_name: str
    product_code: str
    product_name_zh: str
    product_name_en: str
    unit: str
    name: str
    id_number_masked: str
    quantity: str
    village_name: str
    place_name: str
    ear_tags: list[str]
    bank_name: str
    bank_account_masked: str
    premium_total_fen: int
    farmer_fen: int
    status: str
    signer_roles: list[str]  # what the chat may offer for confirmation (R-ENR-5)
    policy_number: str | None
    voucher_ready: bool


class HouseholdConfirmIn(SignerIn):
    """R-ENR-5: the household's own bound account, or a relative / authorised person who names themselves."""


class ObjectionAnswerIn(BaseModel):
    """Staff checked an objection and the row stands: the answer goes back to the household."""

    answer: str = Field(min_length=2, max_length=500)


class HouseholdObjectionIn(BaseModel):
    reason: str = Field(min_length=2, max_length=500)
