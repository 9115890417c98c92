"""Claims: the loss report, its timeline, survey, documents, settlement and payment. Every deadline is a
timestamp on the row (R-CLM-6, R-CLM-11, R-CLM-13). Disaster events live in ``claims.catastrophe``,
weather-index readings and payouts in ``claims.index``, staff alerts in ``backend.alerts``."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from backend.db import utcnow


class ClaimStatus(StrEnum):
    REPORTED = "reported"
    SURVEY_SCHEDULED = "survey_scheduled"
    SURVEYED = "surveyed"
    DOCUMENTS_REQUESTED = "documents_requested"
    ASSESSED = "assessed"  # amount proposed, waiting for the household's confirmation (R-CLM-14)
    AGREED = "agreed"  # confirmed by the household: payment due in 10 days (R-CLM-13)
    OBJECTED = "objected"  # the household objected to the assessed amount
    PAID = "paid"
    DENIED = "denied"


class ClaimKind(StrEnum):
    INDIVIDUAL = "individual"
    COLLECTIVE = "collective"  # reported by an agent for a household (R-CLM-3)
    LIABILITY = "liability"  # an enterprise accident (R-LIA-6)
    INDEX = "index"  # weather-index payout (R-CLM-2): no report


class Claim(SQLModel, table=True):
    __tablename__ = "claim"

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(unique=True, max_length=32)
    idempotency_key: str | None = Field(default=None, unique=True, max_length=64)
    kind: str = Field(default=ClaimKind.INDIVIDUAL.value, max_length=20)
    status: str = Field(default=ClaimStatus.REPORTED.value, max_length=30, index=True)
    policy_id: int = Field(foreign_key="policy.id", index=True)
    # One household of a collective policy (``policy_household``): the claim is that household's own,
    # paid to its account (R-CLM-12) and confirmed by it (R-CLM-14). NULL for a policy's own insured. No
    # foreign key, as ``policy_household`` has none (see its model): its rows are never deleted.
    household_id: int | None = Field(default=None, index=True)
    product_code: str = Field(max_length=40)
    identity_id: int | None = Field(default=None, foreign_key="chat_identity.id", index=True)
    region_code: str = Field(max_length=12, index=True)
    county_code: str = Field(max_length=12, index=True)
    # R-CLM-4 report fields
    insured_name: str = Field(max_length=100)
    cause: str = Field(max_length=40)
    loss_started_at: datetime
    loss_ended_at: datetime | None = None
    lost_quantity: str = Field(max_length=20)
    unit: str = Field(max_length=10)
    estimated_amount_fen: int = 0
    place_name: str = Field(default="", max_length=100)
    latitude: float | None = None
    longitude: float | None = None
    reporter_name: str = Field(max_length=100)
    reporter_phone: str = Field(max_length=20)
    description: str = Field(default="", max_length=2000)
    # Liability accidents (R-LIA-6)
    injured: int | None = None
    dead: int | None = None
    reported_at: datetime = Field(default_factory=utcnow, index=True)
    reported_by_staff_id: int | None = None  # collective report by an agent (R-CLM-3)
    # R-CLM-1: reported more than 24 h after the loss began
    late: bool = False
    delay_minutes: int = 0
    # R-CLM-7: dead animals need proof of harmless disposal before settlement. The insured's upload is
    # evidence only (``disposal_received_at``); the proof counts once an adjuster confirmed it, or
    # recorded the vet authority's confirmation (``disposal_proven_at``, details in
    # ``disposal_confirmation``). A rejected upload clears ``disposal_received_at``: send again.
    disposal_required: bool = False
    disposal_received_at: datetime | None = None
    disposal_proven_at: datetime | None = None
    disposal_confirmation: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}")
    )
    event_id: int | None = Field(default=None, foreign_key="disaster_event.id", index=True)
    # The official warning whose "report a loss" button started this claim (backend/alerts/warnings).
    warning_id: int | None = Field(default=None, foreign_key="cap_warning.id", index=True)
    adjuster_id: int | None = Field(default=None, foreign_key="staff_user.id", index=True)
    # Deadlines and their milestones
    survey_due_at: datetime | None = Field(default=None, index=True)  # R-CLM-6: report + 24 h
    survey_agreed_at: datetime | None = None  # a delay explained to the reporter, a new time agreed
    joint_survey: bool = False  # with the local government (R-CLM-6 larger events)
    remote_survey: bool = False
    # R-DIS-4: how a remote survey is done: video (always offered), drone or satellite (green channel only).
    remote_method: str | None = Field(default=None, max_length=20)
    surveyed_at: datetime | None = None
    settlement_due_at: datetime | None = Field(default=None, index=True)  # R-CLM-11
    assessed_amount_fen: int | None = None
    assessed_at: datetime | None = None
    agreed_amount_fen: int | None = None
    agreed_at: datetime | None = None
    confirmation: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )  # R-CLM-14
    objection: str | None = None
    payment_due_at: datetime | None = Field(default=None, index=True)  # R-CLM-13: agreement + 10 days
    paid_at: datetime | None = None
    paid_amount_fen: int | None = None
    denied_at: datetime | None = None
    denial_reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Reminders already sent, so the scheduler never repeats one: {"survey_due_soon": iso time, ...}
    reminders: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class ClaimEvent(SQLModel, table=True):
    """The claim's timeline, as the farmer sees it in "my claims"."""

    __tablename__ = "claim_event"

    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(foreign_key="claim.id", index=True)
    at: datetime = Field(default_factory=utcnow)
    kind: str = Field(
        max_length=40
    )  # a ClaimStatus, or: survey_delayed, documents_received, disposal_proven...
    note: str = Field(default="", max_length=1000)
    actor: str = Field(default="", max_length=64)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class ClaimAttachment(SQLModel, table=True):
    """Photos, videos and documents of a claim (scene photos, disposal proof, requested documents)."""

    __tablename__ = "claim_attachment"

    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(foreign_key="claim.id", index=True)
    document_id: int = Field(foreign_key="document.id")
    purpose: str = Field(max_length=30)  # scene | disposal | requested | survey | denial_notice | sampling
    added_at: datetime = Field(default_factory=utcnow)


class SurveyReport(SQLModel, table=True):
    """R-CLM-9: loss, cause, whether covered, signed by the surveyors; R-CLM-8 sampling when required."""

    __tablename__ = "survey_report"

    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(foreign_key="claim.id", unique=True)
    loss: str = Field(max_length=2000)
    cause: str = Field(max_length=200)
    covered: bool
    surveyors: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    loss_degree: str | None = Field(default=None, max_length=20)  # light | medium | heavy | total
    sampling: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # R-CLM-8: {"villages": {village code: [loss classes]}, "samplers": [names], "signer": {role, name,
    # relation, authorisation_document_id}} — who signed the sampling record, and how (R-ENR-5).
    sampling_record: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}")
    )
    remote: bool = False
    joint_with_government: bool = False
    created_by: int = Field(foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow)


class DocumentRequest(SQLModel, table=True):
    """R-CLM-9: missing documents are asked for once, all at once."""

    __tablename__ = "document_request"

    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(foreign_key="claim.id", unique=True)
    items: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    requested_by: int = Field(foreign_key="staff_user.id")
    requested_at: datetime = Field(default_factory=utcnow)
    fulfilled_at: datetime | None = None


class ClaimPayment(SQLModel, table=True):
    """R-CLM-12: by transfer to the insured's own account; another payee needs a recorded explanation
    and a second staff member's approval."""

    __tablename__ = "claim_payment"

    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(foreign_key="claim.id", unique=True)
    amount_fen: int
    payee_name: str = Field(max_length=100)
    bank_name: str = Field(max_length=50)
    account_number: str = Field(max_length=30)
    payee_is_insured: bool
    explanation: str | None = Field(default=None, max_length=1000)
    reference: str = Field(max_length=128)
    paid_by: int = Field(foreign_key="staff_user.id")
    paid_at: datetime = Field(default_factory=utcnow)
    # Another payee: the approved exception (``backend.claims.payees``) and who approved it
    payee_exception_id: int | None = Field(default=None, foreign_key="claim_payee_exception.id")
    approved_by: int | None = Field(default=None, foreign_key="staff_user.id")
    prepaid_fen: int = 0  # R-LIA-6: pre-payments already made, deducted from the agreed amount


class PrepaymentKind(StrEnum):
    """R-LIA-6: what the insurer may pay before the settlement of an accident."""

    COMPENSATION = "compensation"
    RESCUE = "rescue"
    MEDICAL = "medical"


class PrepaymentPayeeKind(StrEnum):
    """R-LIA-6 with R-CLM-12: whom a pre-payment goes to. Any of them is fine by name and kind; their
    account is what the payee registry checks (never a village committee's, township's, staff's or another
    insured's)."""

    INSURED = "insured"
    INJURED = "injured"  # the injured worker or their family
    HOSPITAL = "hospital"
    RESCUE_TEAM = "rescue_team"


class ClaimPrepayment(SQLModel, table=True):
    """R-LIA-6 先行垫付: a pre-payment on an accident claim, deducted from the settlement's payment."""

    __tablename__ = "claim_prepayment"

    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(foreign_key="claim.id", index=True)
    kind: str = Field(max_length=20)
    amount_fen: int
    payee_name: str = Field(max_length=100)  # e.g. the hospital, the injured worker, the rescue team
    payee_kind: str = Field(default="other", max_length=20)  # PrepaymentPayeeKind
    bank_name: str = Field(default="", max_length=50)
    account_number: str = Field(default="", max_length=30)  # R-CLM-12: checked against the payee registry
    reason: str = Field(max_length=1000)
    reference: str = Field(default="", max_length=128)  # the transfer's reference
    recorded_by: int = Field(foreign_key="staff_user.id")
    recorded_at: datetime = Field(default_factory=utcnow)
