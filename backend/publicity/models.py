"""Publicity tables: the notice (its rows are a snapshot, already masked) and the objections to it.
The archive of what was shown lives in ``backend/publicity/archive/models.py``."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.db import utcnow


class NoticeKind(StrEnum):
    UNDERWRITING = "underwriting"  # the household list of a collective policy (R-ENR-8)
    CLAIMS_PAYOUT = "claims_payout"  # paid claims with the R-PUB-2 fields
    INDEX_PAYOUT = "index_payout"  # weather-index payouts by administrative village (R-CLM-2)


class NoticeStatus(StrEnum):
    DRAFT = "draft"  # rows built, waiting for the village committee's check
    CHECKED = "checked"  # the check and stamp recorded; staff open it
    OPEN = "open"  # published; closes_at is at least 72 hours after opened_at
    CLOSED = "closed"  # closed by the scheduler at closes_at


class PublicityNotice(SQLModel, table=True):
    """One notice. ``rows`` is the current version's snapshot: ``[{"person_id": int | None, "fields":
    {name: display text}}]``, every personal number already masked (R-PUB-4). A correction replaces
    the rows, adds one to ``version`` and restarts the window; every published version is in the archive."""

    __tablename__ = "publicity_notice"

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(unique=True, max_length=32)
    kind: str = Field(max_length=20)
    status: str = Field(default=NoticeStatus.DRAFT.value, max_length=10, index=True)
    region_code: str = Field(max_length=12, index=True)  # the administrative village (or township)
    region_name: str = Field(max_length=200)
    locale: str = Field(default="zh-CN", max_length=10)  # the language the row values are written in
    source: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    rows: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    version: int = 0  # 0 while a draft; 1 at first opening, +1 per re-publication
    public_token: str = Field(unique=True, max_length=32)  # the unguessable public link and QR payload
    created_by: int = Field(foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow)
    # The village committee's check and stamp (R-PUB-1, R-ENR-8): who checked, when, the stamped list.
    checked_by_name: str | None = Field(default=None, max_length=100)
    checked_at: datetime | None = None
    check_recorded_by: int | None = Field(default=None, foreign_key="staff_user.id")
    stamp_document_id: int | None = Field(default=None, foreign_key="document.id")
    opened_at: datetime | None = None
    closes_at: datetime | None = Field(default=None, index=True)
    closed_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class ObjectionStatus(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"


class NoticeObjection(SQLModel, table=True):
    """An objection raised in chat against one version of a notice; staff answer before ``due_at``."""

    __tablename__ = "publicity_objection"

    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="publicity_notice.id", index=True)
    version: int
    identity_id: int = Field(foreign_key="chat_identity.id", index=True)
    person_id: int | None = Field(default=None, foreign_key="person.id")
    row_index: int | None = None  # the objector's own row, when the notice has one
    reason: str = Field(max_length=1000)
    photo_document_id: int | None = Field(default=None, foreign_key="document.id")
    status: str = Field(default=ObjectionStatus.OPEN.value, max_length=10, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    due_at: datetime = Field(index=True)
    answer: str | None = Field(default=None, max_length=1000)
    confirmed_error: bool = False
    answered_by: int | None = Field(default=None, foreign_key="staff_user.id")
    answered_at: datetime | None = None


class NoticePerson(SQLModel, table=True):
    """The persons listed on a notice's current version (rewritten at each publication): how "公示" in
    chat finds the notices a household is on, also where it holds no policy of its own (collective)."""

    __tablename__ = "publicity_notice_person"
    __table_args__ = (UniqueConstraint("notice_id", "person_id", name="uq_publicity_notice_person"),)

    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="publicity_notice.id", index=True)
    person_id: int = Field(foreign_key="person.id", index=True)
