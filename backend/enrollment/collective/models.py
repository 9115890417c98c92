"""Collective enrollment: the organiser's enrollment and one row per insured household (R-ENR-1, R-ENR-2)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.db import utcnow


class CollectiveStatus(StrEnum):
    AWAITING_CONFIRMATION = "awaiting_confirmation"  # the committee's check and stamp not yet recorded
    AWAITING_PAYMENT = "awaiting_payment"  # R-ENR-9
    ISSUED = "issued"
    CANCELLED = "cancelled"


class CollectiveEnrollment(SQLModel, table=True):
    """One uploaded, clean household list: the organiser's application and, once paid, its policy.

    The organiser (a village committee or an agricultural organisation) has no chat identity: its
    ``Application`` and ``Policy`` rows carry ``identity_id`` NULL and ``kind`` "collective"."""

    __tablename__ = "collective_enrollment"
    # The same file for the same product and area is one enrollment: an upload repeated is answered with
    # the enrollment it made (``list_sha256``); the already-insured check catches an edited copy.

    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="application.id", unique=True)
    policy_id: int | None = Field(default=None, foreign_key="policy.id", index=True)
    product_code: str = Field(foreign_key="product.code", max_length=40)
    region_code: str = Field(max_length=12, index=True)  # the organiser's village or township
    organiser_kind: str = Field(max_length=30)  # village_committee | organisation
    organiser_name: str = Field(max_length=200)
    organiser_credit_code: str | None = Field(default=None, max_length=18)
    status: str = Field(default=CollectiveStatus.AWAITING_CONFIRMATION.value, max_length=30, index=True)
    list_sha256: str = Field(max_length=64, index=True)
    list_filename: str = Field(max_length=200)
    household_count: int
    uploaded_by: int = Field(foreign_key="staff_user.id")
    uploaded_at: datetime = Field(default_factory=utcnow)
    # The committee's check and stamp: who confirmed for the organiser, which staff member recorded it,
    # when, and the photo of the stamped list (a ``document`` of kind ``stamped_list``).
    organiser_confirmed_by_name: str | None = Field(default=None, max_length=100)
    organiser_confirmed_by_title: str | None = Field(default=None, max_length=100)
    organiser_confirmation_recorded_by: int | None = Field(default=None, foreign_key="staff_user.id")
    organiser_confirmed_at: datetime | None = None
    stamp_document_id: int | None = Field(default=None, foreign_key="document.id")
    households_notified_at: datetime | None = None
    issued_notified_at: datetime | None = None


class HouseholdStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    OBJECTED = "objected"


class PolicyHousehold(SQLModel, table=True):
    """One insured household of a collective enrollment, as its list row gave it (R-ENR-2).

    Written set-based at upload (never one ORM add per row). ``id_number`` and ``bank_account`` are kept
    whole (claims pay this account, R-CLM-12); everything shown to others masks them (R-PUB-4)."""

    __tablename__ = "policy_household"
    __table_args__ = (UniqueConstraint("collective_id", "id_number", name="uq_policy_household_id_number"),)

    id: int | None = Field(default=None, primary_key=True)
    # No foreign keys on collective_id and person_id: PostgreSQL checks each one row by row, and the two
    # checks were 3.2 of the 4.6 s that 100,000 households took to store (benchmarks/collective_import.py).
    # Their only writer is ``service.store_list``, in the transaction that creates the enrollment and
    # matches or creates the persons; neither table has a delete path. collective_id is looked up through
    # the unique (collective_id, id_number) index.
    collective_id: int
    line: int  # the row of the uploaded list (header = 1)
    person_id: int = Field(index=True)
    name: str = Field(max_length=100)
    id_number: str = Field(max_length=18, index=True)
    phone: str | None = Field(default=None, max_length=20)
    product_code: str = Field(max_length=40)
    quantity: str = Field(max_length=20)
    village_code: str = Field(max_length=12)
    place_name: str = Field(default="", max_length=100)
    ear_tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    bank_name: str = Field(max_length=100)
    bank_account: str = Field(max_length=30, index=True)  # the payee check's lookup (R-CLM-12)
    sum_insured_fen: int
    premium_total_fen: int
    farmer_fen: int  # the household's own share of the premium
    status: str = Field(default=HouseholdStatus.PENDING.value, max_length=20)
    # R-ENR-5: who confirmed: {"role": "insured"|"relative"|"authorised", "name", "relation", ...}.
    signer: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    confirmed_identity_id: int | None = Field(default=None, foreign_key="chat_identity.id")
    confirmed_at: datetime | None = None
    objection_reason: str | None = Field(default=None, max_length=500)
    objected_at: datetime | None = None
    # Staff's answer to an objection found unfounded (the row stands): who, when, what they said. A real
    # error is corrected by cancelling the list and uploading the fixed one.
    objection_answer: str | None = Field(default=None, max_length=500)
    objection_answered_by: int | None = Field(default=None, foreign_key="staff_user.id")
    objection_answered_at: datetime | None = None
    voucher_document_id: int | None = Field(default=None, foreign_key="document.id")
