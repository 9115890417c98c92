"""Claims contract for the bot (the insured's side) and for collective reports by agents."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, computed_field

from backend.claims.rules import CAUSES_BY_CATEGORY, delay_parts
from backend.ids import Id


def causes_for(category: str) -> tuple[str, ...]:
    """Part of the API contract: the causes ``ClaimReportIn.cause`` accepts for a product category (the
    bot offers exactly these; anything else is refused with ``cause_not_covered_by_product``)."""
    return CAUSES_BY_CATEGORY.get(category, ())


class ClaimReportIn(BaseModel):
    """R-CLM-4 report fields; the reporter's phone defaults to the bound phone of the chat identity."""

    idempotency_key: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    policy_id: Id
    cause: str = Field(max_length=40)
    loss_started_at: datetime
    loss_ended_at: datetime | None = None
    lost_quantity: str = Field(max_length=20)
    estimated_amount_yuan: str = Field(default="0", max_length=20)
    place_name: str = Field(default="", max_length=100)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    reporter_name: str = Field(max_length=30)
    description: str = Field(default="", max_length=2000)
    photo_document_ids: list[Id] = Field(default_factory=list, max_length=10)
    disposal_document_ids: list[Id] = Field(default_factory=list, max_length=10)
    injured: int | None = Field(default=None, ge=0, le=100_000)  # liability accidents (R-LIA-6)
    dead: int | None = Field(default=None, ge=0, le=100_000)
    # The official warning whose "report a loss" button began this report (the claim carries it).
    warning_id: Id | None = None


class TimelineEntry(BaseModel):
    at: datetime
    kind: str
    note: str


class ClaimOut(BaseModel):
    id: int
    number: str
    kind: str
    status: str
    policy_id: int
    product_code: str
    cause: str
    loss_started_at: datetime
    lost_quantity: str
    unit: str
    estimated_amount_fen: int
    reported_at: datetime
    late: bool
    delay_minutes: int
    survey_due_at: datetime | None
    joint_survey: bool = False
    remote_survey: bool = False
    disposal_required: bool
    disposal_proven: bool
    assessed_amount_fen: int | None
    agreed_amount_fen: int | None
    paid_amount_fen: int | None
    paid_at: datetime | None
    documents_requested: list[str] = Field(default_factory=list)
    denial_reasons: list[str] = Field(default_factory=list)
    next_action: str  # what the insured must do next: a key of messages claims labels
    timeline: list[TimelineEntry] = Field(default_factory=list)
    # R-DIS-4: a claim in a disaster's green channel needs fewer documents (``claims.doc_<key>`` labels),
    # may be surveyed by drone or satellite besides video, and may be paid in advance.
    green_channel: bool = False
    documents_needed: list[str] = Field(default_factory=list)
    remote_methods: list[str] = Field(default_factory=list)
    remote_method: str | None = None
    prepayment_available: bool = False

    # R-CLM-1: the delay past the 24 hours in days, hours and minutes, for the chat to say "3 天 4 小时".
    @computed_field  # type: ignore[prop-decorator]
    @property
    def delay_days(self) -> int:
        return delay_parts(self.delay_minutes).days

    @computed_field  # type: ignore[prop-decorator]
    @property
    def delay_hours(self) -> int:
        return delay_parts(self.delay_minutes).hours

    @computed_field  # type: ignore[prop-decorator]
    @property
    def delay_rest_minutes(self) -> int:
        return delay_parts(self.delay_minutes).minutes


class AttachmentIn(BaseModel):
    purpose: Literal["scene", "disposal", "requested"]
    document_ids: list[Id] = Field(min_length=1, max_length=10)


class SettlementAnswerIn(BaseModel):
    """R-CLM-14: the household confirms the assessed amount, or objects with a reason."""

    answer: Literal["confirm", "object"]
    reason: str | None = Field(default=None, min_length=2, max_length=1000)
    # The amount the household was shown: a button from before a re-assessment must not confirm the new one.
    expected_amount_fen: int | None = None


class CollectiveHousehold(BaseModel):
    policy_id: Id
    # A household of a collective policy (its ``policy_household`` id): required on such a policy, whose
    # claims are each household's own (R-CLM-12).
    household_id: Id | None = None
    lost_quantity: str = Field(max_length=20)
    estimated_amount_yuan: str = Field(default="0", max_length=20)


class CollectiveReportIn(BaseModel):
    """R-CLM-3: an agent reports for the affected households of one village at once."""

    village_code: str = Field(min_length=12, max_length=12)
    cause: str = Field(max_length=40)
    loss_started_at: datetime
    loss_ended_at: datetime | None = None
    place_name: str = Field(default="", max_length=100)
    description: str = Field(default="", max_length=2000)
    households: list[CollectiveHousehold] = Field(min_length=1, max_length=1000)


class CollectiveReportOut(BaseModel):
    claims: list[dict[str, Any]]
