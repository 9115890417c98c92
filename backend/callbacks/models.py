"""Callback surveys after a claim payment (R-CBK-1 to R-CBK-5).

One ``callback_sample`` per local day records the draw: its seed, the rule's figures and (in
``callback_population``, one row per paid claim considered) the population in claim-id order, so an
auditor re-derives the same sample. A ``callback`` is one paid insured asked whether the money arrived;
its steps are timestamps that the scheduler acts on (ask, remind after 48 h, unreachable after another
48 h). Records are kept for ``TIANBAO_CALLBACK_RETENTION_DAYS`` (at least a year, R-CBK-5).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from backend.db import utcnow


class CallbackStatus(StrEnum):
    ASKED = "asked"  # the first question went out (chat or SMS); no answer yet
    REMINDED = "reminded"  # no answer 48 h after asking: reminded once
    ANSWERED = "answered"  # the two questions that matter (received? amount right?) are answered
    UNREACHABLE = "unreachable"  # no answer 48 h after the reminder, or no way to reach: staff queue
    CLOSED = "closed"  # still unreachable after staff re-confirmed the contact: reason in the remarks


class CallbackSample(SQLModel, table=True):
    __tablename__ = "callback_sample"

    id: int | None = Field(default=None, primary_key=True)
    drawn_on: str = Field(unique=True, max_length=10)  # the local day (YYYY-MM-DD): one draw a day
    drawn_at: datetime = Field(default_factory=utcnow, index=True)
    seed: str = Field(max_length=40)  # a 64-bit integer, as text (portable across databases)
    permille: int  # the overall rate applied, in per mille (5 = 0.5 %, R-CBK-2)
    households_per_case: int  # the collective minimum applied (3, R-CBK-2)
    population_size: int
    required_overall: int  # ceil(population × rate)
    # Households still due per collective case in this draw (case key -> count), after the case's
    # households drawn on earlier days: part of what the auditor needs to re-derive the draw.
    case_quotas: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    sample_size: int


class CallbackPopulation(SQLModel, table=True):
    """A paid claim considered by a draw: each payment enters exactly one population (unique claim)."""

    __tablename__ = "callback_population"

    id: int | None = Field(default=None, primary_key=True)
    sample_id: int = Field(foreign_key="callback_sample.id", index=True)
    claim_id: int = Field(foreign_key="claim.id", unique=True)
    case_key: str | None = Field(default=None, max_length=40)  # event:<id> / policy:<id> for collective
    drawn: bool = False


class Callback(SQLModel, table=True):
    __tablename__ = "callback"

    id: int | None = Field(default=None, primary_key=True)
    sample_id: int = Field(foreign_key="callback_sample.id", index=True)
    drawn_on: str = Field(max_length=10, index=True)
    claim_id: int = Field(foreign_key="claim.id", unique=True)
    policy_id: int = Field(foreign_key="policy.id")
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    region_code: str = Field(max_length=12, index=True)  # the claim's (the household's village)
    case_key: str | None = Field(default=None, max_length=40)
    amount_fen: int  # what the payment record says was paid
    paid_at: datetime
    due_at: datetime = Field(index=True)  # paid_at + 1 month (R-CBK-1)
    late: bool = False  # drawn after its due date (the scheduler was down): asked at once
    due_alerted_at: datetime | None = None  # staff told that it is due within 3 days and still open
    status: str = Field(default=CallbackStatus.ASKED.value, max_length=20, index=True)
    attempts: int = 1  # 1, and 2 after staff re-confirmed the contact (R-CBK-3)
    channel: str = Field(default="", max_length=20)  # chat | sms | phone (staff) | "" (no way to reach)
    asked_at: datetime | None = Field(default=None, index=True)
    reminded_at: datetime | None = Field(default=None, index=True)
    unreachable_at: datetime | None = None
    contact_confirmed_at: datetime | None = None
    contact_confirmed_by: int | None = Field(default=None, foreign_key="staff_user.id")
    # The answers; None until given. The first answer to a question counts (a second tap records nothing).
    received: bool | None = None
    amount_correct: bool | None = None
    satisfaction: int | None = None
    comment: str | None = Field(default=None, max_length=1000)
    comment_skipped: bool = False
    answered_at: datetime | None = None  # received and amount both answered
    completed_at: datetime | None = None  # every question answered or skipped
    answered_by_staff_id: int | None = Field(default=None, foreign_key="staff_user.id")  # by phone
    # R-CBK-4: an answer that contradicts the records
    flagged_at: datetime | None = Field(default=None, index=True)
    flag_reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    flag_resolved_at: datetime | None = None
    flag_resolved_by: int | None = Field(default=None, foreign_key="staff_user.id")
    flag_note: str | None = Field(default=None, max_length=1000)
    # R-CBK-3: the reason, recorded by staff, when the insured stays unreachable
    remarks: str | None = Field(default=None, max_length=1000)
    closed_at: datetime | None = None
    closed_by: int | None = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow)
    history: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
