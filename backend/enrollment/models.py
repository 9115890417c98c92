"""Enrollment: QR campaigns and scans, applications, payments, policies, endorsements, documents."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.db import utcnow


class QrCampaign(SQLModel, table=True):
    """R-LIA-3: a poster's QR code. Its signed payload opens the right enrollment in chat."""

    __tablename__ = "qr_campaign"

    id: int | None = Field(default=None, primary_key=True)
    product_code: str = Field(foreign_key="product.code", max_length=40)
    agent_id: int | None = Field(default=None, foreign_key="staff_user.id")
    region_code: str | None = Field(default=None, max_length=12)
    title: str = Field(default="", max_length=100)
    expires_at: datetime | None = None
    active: bool = True
    created_by: int | None = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow)


class QrScan(SQLModel, table=True):
    __tablename__ = "qr_scan"

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="qr_campaign.id", index=True)
    identity_id: int = Field(foreign_key="chat_identity.id", index=True)
    agent_id: int | None = None
    scanned_at: datetime = Field(default_factory=utcnow)


class ApplicationStatus(StrEnum):
    PENDING_VERIFICATION = "pending_verification"  # R-ENR-7: waits for on-site verification
    AWAITING_PAYMENT = "awaiting_payment"  # R-ENR-9
    ISSUED = "issued"
    CANCELLED = "cancelled"


class Application(SQLModel, table=True):
    """A submitted application (the chat collects the answers; the application is created on confirm)."""

    __tablename__ = "application"

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(unique=True, max_length=32)
    # The chat's confirm button carries this key: a double tap creates one application.
    idempotency_key: str = Field(unique=True, max_length=64)
    product_code: str = Field(foreign_key="product.code", max_length=40)
    kind: str = Field(max_length=20)  # individual | enterprise
    status: str = Field(max_length=30, index=True)
    # NULL for a collective enrollment: its organiser (a village committee) has no chat (R-ENR-1).
    identity_id: int | None = Field(default=None, foreign_key="chat_identity.id", index=True)
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    enterprise_id: int | None = Field(default=None, foreign_key="enterprise.id")
    campaign_id: int | None = Field(default=None, foreign_key="qr_campaign.id")
    agent_id: int | None = None
    region_code: str = Field(max_length=12, index=True)
    # Everything the applicant gave, as submitted (R-ENR-2 fields, survey answers, signer ...).
    answers: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    quantity: str = Field(max_length=20)
    # 64-bit: a collective list's totals (a village's households together) pass 2^31 fen (21 million yuan).
    sum_insured_fen: int = Field(sa_type=BigInteger)
    # {"total", "central", "provincial", "county", "farmer"} in fen; liability: {"base_rate", "factor", ...}
    premium: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    payable_fen: int = Field(sa_type=BigInteger)  # what the insured pays (the farmer's share, or the premium)
    disclosure_version: str = Field(max_length=20)
    disclosure_confirmed_at: datetime
    signer: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    verification_required: bool = False
    verification_reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    verified_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Verification(SQLModel, table=True):
    """R-ENR-7: on-site verification by an agent or adjuster, with photos and a record."""

    __tablename__ = "verification"

    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="application.id", index=True)
    staff_id: int = Field(foreign_key="staff_user.id")
    record: str
    head_count: int | None = None
    land_rights_evidence: str | None = Field(default=None, max_length=200)
    epidemic_prevention: str | None = Field(default=None, max_length=200)
    photo_document_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    passed: bool = True
    verified_at: datetime = Field(default_factory=utcnow)


class PaymentStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    FAILED = "failed"


class Payment(SQLModel, table=True):
    __tablename__ = "payment"
    __table_args__ = (UniqueConstraint("provider", "external_ref", name="uq_payment_provider_ref"),)

    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="application.id", index=True)
    provider: str = Field(max_length=30)  # demo | telegram | bank_deduction | government_letter
    amount_fen: int
    status: str = Field(default=PaymentStatus.PENDING.value, max_length=20)
    external_ref: str | None = Field(default=None, max_length=128)
    evidence: str | None = Field(default=None, max_length=500)
    confirmed_by: int | None = None
    created_at: datetime = Field(default_factory=utcnow)
    confirmed_at: datetime | None = None


class Policy(SQLModel, table=True):
    __tablename__ = "policy"

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(unique=True, max_length=32)
    application_id: int = Field(foreign_key="application.id", unique=True)
    product_code: str = Field(foreign_key="product.code", max_length=40)
    # NULL for a collective enrollment: its organiser (a village committee) has no chat (R-ENR-1).
    identity_id: int | None = Field(default=None, foreign_key="chat_identity.id", index=True)
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    enterprise_id: int | None = Field(default=None, foreign_key="enterprise.id")
    region_code: str = Field(max_length=12, index=True)
    insured_name: str = Field(max_length=100)
    # The current terms: endorsements change these (bank account, phone, quantity).
    terms: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    quantity: str = Field(max_length=20)
    sum_insured_fen: int = Field(sa_type=BigInteger)  # 64-bit: a collective policy's totals
    premium_fen: int = Field(sa_type=BigInteger)
    starts_at: datetime
    ends_at: datetime
    status: str = Field(default="active", max_length=20)
    late_entry: bool = False
    late_entry_reason: str | None = None
    issued_at: datetime = Field(default_factory=utcnow)


class EndorsementStatus(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REFUSED = "refused"


class Endorsement(SQLModel, table=True):
    """R-ENR-11: a change to an issued policy, requested in chat and decided by staff."""

    __tablename__ = "endorsement"

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(unique=True, max_length=32)
    policy_id: int = Field(foreign_key="policy.id", index=True)
    field: str = Field(max_length=30)  # bank_account | phone | quantity
    old_value: str = Field(max_length=100)
    new_value: str = Field(max_length=100)
    extra: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=EndorsementStatus.REQUESTED.value, max_length=20)
    requested_at: datetime = Field(default_factory=utcnow)
    decided_by: int | None = None
    decided_at: datetime | None = None
    decision_note: str | None = None


class Document(SQLModel, table=True):
    """Stored files: e-documents (R-ENR-10) and evidence photos, each with its SHA-256."""

    __tablename__ = "document"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=30, index=True)
    policy_id: int | None = Field(default=None, foreign_key="policy.id", index=True)
    application_id: int | None = Field(default=None, foreign_key="application.id", index=True)
    endorsement_id: int | None = Field(default=None, foreign_key="endorsement.id")
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    # The staff member who uploaded it (evidence photos, signed forms): a late entry uses only a signed form
    # its own underwriter, or staff of their region, uploaded (R-ENR-5, R-ENR-6).
    uploaded_by_staff_id: int | None = Field(default=None, foreign_key="staff_user.id", index=True)
    filename: str = Field(max_length=200)
    content_type: str = Field(max_length=100)
    sha256: str = Field(max_length=64, index=True)
    size: int
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class EarTag(SQLModel, table=True):
    """No ear tag twice within the insurer (R-ENR-2)."""

    __tablename__ = "ear_tag"

    tag: str = Field(primary_key=True, max_length=40)
    application_id: int = Field(foreign_key="application.id", index=True)
