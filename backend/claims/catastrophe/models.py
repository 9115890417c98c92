"""R-CLM-5 disaster events (table ``disaster_event``); claims point at them by ``claim.event_id``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.db import utcnow


class DisasterEvent(SQLModel, table=True):
    """R-CLM-5: a catastrophe or emergency that links claims across counties."""

    __tablename__ = "disaster_event"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    cause: str = Field(max_length=40)
    started_on: datetime
    # The last day of loss of its claims: a candidate's window is [started_on, ended_on] (R-CLM-5 grouping).
    ended_on: datetime | None = None
    # candidate: grouped automatically (same cause, overlapping time, one city), for staff to confirm or
    # split; confirmed: opened or confirmed by staff.
    status: str = Field(default="confirmed", max_length=20, index=True)
    region_code: str = Field(
        default="", max_length=12
    )  # a candidate's region (12 digits); "" for staff events
    confirmed_by: int | None = None
    confirmed_at: datetime | None = None
    catastrophe: bool = False
    catastrophe_reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    raised_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


# --- R-DIS-2 to R-DIS-5: the response to a graded event (migration 0019) -----------------------------------


class EventResponse(SQLModel, table=True):
    """The response side of one ``disaster_event`` (one row per event, created when staff first enter
    estimates, mark it sensitive or turn on the green channel): R-DIS-2 estimates and grade, R-DIS-3
    sensitivity and the staff-entered text of the daily report, R-DIS-4 green channel. Kept beside the
    event so the columns the CAP warnings and R-CLM-5 use stay as they are."""

    __tablename__ = "event_response"

    event_id: int = Field(primary_key=True, foreign_key="disaster_event.id")
    # R-DIS-2 estimates: expected property payout P and casualty payout C in fen, insured deaths D.
    property_fen: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    casualty_fen: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    deaths: int = 0
    grade: str | None = Field(default=None, max_length=3)  # "I" | "II" | "III"; None below III
    graded_at: datetime | None = None  # the first moment it was a graded event: the R-DIS-3 clocks start
    sensitive: bool = False  # staff-marked "very sensitive": the grade I clocks apply whatever the grade
    # R-DIS-3 daily report: the staff-entered parts (the figures are computed from the claims).
    situation: str = Field(default="", max_length=4000)
    progress: str = Field(default="", max_length=4000)
    problems: str = Field(default="", max_length=4000)
    measures: str = Field(default="", max_length=4000)
    # R-DIS-4 green channel.
    green_channel: bool = Field(default=False, index=True)
    green_channel_changed_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class EventGradeChange(SQLModel, table=True):
    """R-DIS-2: every change of the estimates (and so, maybe, of the grade): old and new, who, when."""

    __tablename__ = "event_grade_change"

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="disaster_event.id", index=True)
    old_property_fen: int = Field(sa_column=Column(BigInteger, nullable=False))
    old_casualty_fen: int = Field(sa_column=Column(BigInteger, nullable=False))
    old_deaths: int
    old_grade: str | None = Field(default=None, max_length=3)
    new_property_fen: int = Field(sa_column=Column(BigInteger, nullable=False))
    new_casualty_fen: int = Field(sa_column=Column(BigInteger, nullable=False))
    new_deaths: int
    new_grade: str | None = Field(default=None, max_length=3)
    old_sensitive: bool = False
    new_sensitive: bool = False
    note: str = Field(default="", max_length=1000)
    staff_id: int | None = None
    staff_username: str = Field(default="", max_length=64)
    at: datetime = Field(default_factory=utcnow)


class EventReportDeadline(SQLModel, table=True):
    """R-DIS-3: one reporting clock of an event (``supervisor`` 2 h, ``phone`` 30 min, ``writing`` 1 h),
    acted on by the ``event-report-clocks`` job: a reminder before it, an escalation after it, once each."""

    __tablename__ = "event_report_deadline"
    __table_args__ = (UniqueConstraint("event_id", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="disaster_event.id", index=True)
    kind: str = Field(max_length=20)
    started_at: datetime
    due_at: datetime = Field(index=True)
    reminded_at: datetime | None = None
    escalated_at: datetime | None = None
    done_at: datetime | None = None
    done_by: int | None = None
    note: str = Field(default="", max_length=1000)


class EventDailyReport(SQLModel, table=True):
    """R-DIS-3: the daily report of a grade I or II response, one per event and local day (a PDF)."""

    __tablename__ = "event_daily_report"
    __table_args__ = (UniqueConstraint("event_id", "report_date"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="disaster_event.id", index=True)
    report_date: str = Field(max_length=10)  # the local day, YYYY-MM-DD
    grade: str = Field(max_length=3)
    figures: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    document_id: int = Field(foreign_key="document.id")
    generated_at: datetime = Field(default_factory=utcnow)


class BranchClosure(SQLModel, table=True):
    """R-DIS-5: a branch (the office serving a region) closed by a disaster; open while ``reopened_at`` is
    empty. Its customers are told once at closing (and once at reopening) that every service continues
    online."""

    __tablename__ = "branch_closure"

    id: int | None = Field(default=None, primary_key=True)
    region_code: str = Field(max_length=12, index=True)
    event_id: int | None = Field(default=None, foreign_key="disaster_event.id")
    reason: str = Field(default="", max_length=500)
    closed_at: datetime = Field(default_factory=utcnow)
    closed_by: int | None = None
    reopened_at: datetime | None = Field(default=None, index=True)
    reopened_by: int | None = None
    told_closed: int = 0  # how many people the closure notice went to
    told_reopened: int = 0
