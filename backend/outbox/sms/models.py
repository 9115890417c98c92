"""A phone number's standing for bulk texts."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from backend.db import utcnow


class SmsNumber(SQLModel, table=True):
    """Stopped for bulk by "回复TD退订" or the provider's unsubscribe report. One-time codes and the
    notices the law requires still go to it."""

    __tablename__ = "sms_number"

    phone: str = Field(primary_key=True, max_length=20)
    bulk_stopped_at: datetime | None = None
    stop_source: str | None = Field(default=None, max_length=32)
    updated_at: datetime = Field(default_factory=utcnow)
