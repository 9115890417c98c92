"""Official warnings (CAP 1.2) as received (table ``cap_warning``) and the feeds polled (``cap_feed``).

A ``cap_warning`` is one CAP message, kept whatever it says (staff see Test and Exercise messages too),
once per (sender, identifier, sent): the same message from a feed and an upload is one row. Its
``state`` says what it did for farmers; the fan-out itself is a ``broadcast`` (``broadcast_id``: the
warning; ``all_clear_broadcast_id``: the all-clear a Cancel sent to the same people; ``invite_broadcast_id``:
the invitation to report losses after it expired).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.db import utcnow


class WarningState(StrEnum):
    HELD = "held"  # Test / Exercise / Draft / System, Ack / Error: stored and shown to staff only
    PENDING = "pending"  # waiting for a staff member's approval
    SENT = "sent"  # its broadcast went out (an Update: to those who got the original)
    EXPIRED = "expired"  # expired before it was sent: nothing goes out
    NO_AREA = "no_area"  # names no area we can match (no division code, no polygon, no circle)
    CANCELLED = "cancelled"  # cancelled by its sender (an all-clear went to those who got it)
    UPDATED = "updated"  # an Update replaced it (the update's row carries on)
    CANCEL = "cancel"  # a Cancel message itself (its all-clear is ``all_clear_broadcast_id``)
    UNMATCHED = "unmatched"  # an Update / Cancel referring to nothing we received


class CapWarning(SQLModel, table=True):
    __tablename__ = "cap_warning"
    __table_args__ = (UniqueConstraint("sender", "identifier", "sent", name="uq_cap_warning_message"),)

    id: int | None = Field(default=None, primary_key=True)
    sender: str = Field(max_length=255)
    identifier: str = Field(max_length=255)
    sent: datetime = Field(index=True)
    status: str = Field(max_length=20)  # Actual, Exercise, System, Test, Draft
    msg_type: str = Field(max_length=20)  # Alert, Update, Cancel, Ack, Error
    scope: str = Field(max_length=20)
    # [[sender, identifier, sent ISO]] as the message named them
    references: list[list[str]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    refers_to_id: int | None = Field(default=None, foreign_key="cap_warning.id", index=True)
    # The <info> block farmers read (zh-CN, then zh-TW / zh, then en, then the first)
    language: str = Field(default="", max_length=20)
    event: str = Field(default="", max_length=255)
    hazard: str = Field(default="other", max_length=20)  # advice.HAZARDS
    category: str = Field(default="", max_length=40)
    urgency: str = Field(default="", max_length=20)
    severity: str = Field(default="", max_length=20)
    certainty: str = Field(default="", max_length=20)
    sender_name: str = Field(default="", max_length=255)
    headline: str = Field(default="", max_length=500)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    instruction: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    area_desc: str = Field(default="", max_length=1000)
    onset: datetime | None = None
    expires: datetime | None = Field(default=None, index=True)
    # Where: 12-digit region codes from administrative-division geocodes; every geocode as given;
    # the union of polygons and circles as GeoJSON (lon/lat)
    region_codes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    geocodes: list[list[str]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    geometry: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    state: str = Field(default=WarningState.PENDING.value, max_length=20, index=True)
    source: str = Field(default="upload", max_length=20)  # upload | feed
    source_url: str | None = Field(default=None, max_length=1000, index=True)
    uploaded_by: int | None = Field(default=None, foreign_key="staff_user.id")
    approved_by: int | None = Field(default=None, foreign_key="staff_user.id")
    approved_at: datetime | None = None
    auto_sent: bool = False  # Extreme + Immediate with TIANBAO_CAP_AUTO_SEND_EXTREME on
    broadcast_id: int | None = Field(default=None, index=True)
    all_clear_broadcast_id: int | None = None
    invite_broadcast_id: int | None = None
    invited_at: datetime | None = Field(default=None, index=True)  # the post-expiry invitation (or none due)
    event_id: int | None = Field(default=None, foreign_key="disaster_event.id", index=True)
    raw_xml: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, index=True)


class CapFeed(SQLModel, table=True):
    """A configured feed's conditional-request state: what the server said last, so an unchanged feed
    costs a 304 and nothing more."""

    __tablename__ = "cap_feed"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(unique=True, max_length=1000)
    etag: str | None = Field(default=None, max_length=500)
    last_modified: str | None = Field(default=None, max_length=100)
    checked_at: datetime | None = None
    last_status: int | None = None
    last_error: str | None = Field(default=None, max_length=1000)
    # Entry links refused before (invalid CAP): not fetched again while the feed lists them.
    refused_links: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
