"""R-CLM-5 disaster events (table ``disaster_event``); claims point at them by ``claim.event_id``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column
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
