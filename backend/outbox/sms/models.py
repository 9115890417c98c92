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


class SmsLink(SQLModel, table=True):
    """The short link in a text (``<site>/s/<token>``): it opens the web chat at ``target`` (``claim:12``,
    ``policy:3``) for ``person_id`` only; the target is checked against the chat's person when opened.
    Random, not signed: a provider's variable holds 12 characters, too few for a payload and a MAC."""

    __tablename__ = "sms_link"

    token: str = Field(primary_key=True, max_length=12)
    person_id: int = Field(foreign_key="person.id", index=True)
    target: str = Field(max_length=40)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    opened_at: datetime | None = None
