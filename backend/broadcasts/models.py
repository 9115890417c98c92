"""Broadcast tables: the broadcast (content, audience, status, counters), its recipients resolved once, the
texts rendered once per variant, and the township areas that geometry audiences fall back on."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.db import utcnow


class BroadcastKind(StrEnum):
    WARNING = "warning"  # risk reminders before a disaster (R-DIS-1): texts go at any hour
    REMINDER = "reminder"
    STAFF_MESSAGE = "staff_message"
    PUBLICITY = "publicity"


class BroadcastStatus(StrEnum):
    DRAFT = "draft"
    AWAITING_APPROVAL = "awaiting_approval"  # four eyes: above the threshold a second staff member approves
    APPROVED = "approved"  # ready: starts now, or at send_at (the scheduler starts due ones)
    SENDING = "sending"  # recipients being resolved and/or messages in the outbox
    PAUSED = "paused"  # its queued outbox rows are held
    DONE = "done"
    CANCELLED = "cancelled"


class RecipientStatus(StrEnum):
    QUEUED = "queued"  # an outbox row was written (its delivery status lives on the outbox row)
    EXCLUDED = "excluded"  # resolved but not messaged: ``reason`` says why


class Broadcast(SQLModel, table=True):
    """One fan-out. ``content`` is a ``schemas.BroadcastContent``, ``audience`` an ``AudienceSpec`` (both as
    JSON). Recipients are resolved in person-id ranges: ``resolved_through`` is the highest person id done,
    so a fan-out interrupted by a restart carries on where it stopped (the scheduler job)."""

    __tablename__ = "broadcast"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20, index=True)
    status: str = Field(default=BroadcastStatus.DRAFT.value, max_length=20, index=True)
    content: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    audience: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # The region scopes of the staff member who created it: the audience is clipped to them ([] = all).
    scope_regions: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    ack_button: bool = False
    claim_link: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # One source makes one broadcast ("cap:<identifier>"): unique when set.
    source_key: str | None = Field(default=None, max_length=200, unique=True)
    send_at: datetime | None = Field(default=None, index=True)
    audience_size: int | None = None  # counted at submit (four eyes) without writing recipients
    recipient_count: int = 0
    excluded_count: int = 0
    resolved_through: int = Field(default=0, sa_type=BigInteger)
    resolved_at: datetime | None = None  # every recipient resolved and queued
    # Whoever resolves ranges holds this lease (the "send" request, then the scheduler's job), so two never
    # move the cursor over the same ranges; a runner that died lets it lapse.
    fanout_lease_until: datetime | None = None
    created_by: int | None = Field(default=None, foreign_key="staff_user.id")
    approved_by: int | None = Field(default=None, foreign_key="staff_user.id")
    approved_at: datetime | None = None
    started_at: datetime | None = None
    paused_at: datetime | None = None
    finished_at: datetime | None = None
    cancelled_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class BroadcastRecipient(SQLModel, table=True):
    """One person of a broadcast, once (deduplicated across audiences). ``variant`` is the bit set of the
    content sections that apply to what the person insures; ``channel``/``address`` the reach chosen."""

    __tablename__ = "broadcast_recipient"
    __table_args__ = (
        UniqueConstraint("broadcast_id", "person_id", name="uq_broadcast_recipient_person"),
        Index("ix_broadcast_recipient_person", "person_id", "created_at"),
    )

    # No foreign keys: PostgreSQL checks each one row by row, and a fan-out writes a million rows. The only
    # writer is ``fanout``, which selects the ids from the tables they name.
    id: int | None = Field(default=None, primary_key=True)
    broadcast_id: int
    person_id: int
    identity_id: int | None = None
    channel: str = Field(max_length=20)
    address: str = Field(max_length=64)
    locale: str = Field(default="zh-CN", max_length=10)
    variant: int = 0
    region_code: str = Field(max_length=12)
    status: str = Field(default=RecipientStatus.QUEUED.value, max_length=16)
    reason: str | None = Field(default=None, max_length=40)
    acked_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class BroadcastVariant(SQLModel, table=True):
    """A text rendered once for every recipient with the same sections, locale and channel."""

    __tablename__ = "broadcast_variant"
    __table_args__ = (
        UniqueConstraint("broadcast_id", "variant", "locale", "channel", name="uq_broadcast_variant"),
    )

    id: int | None = Field(default=None, primary_key=True)
    broadcast_id: int = Field(foreign_key="broadcast.id", index=True)
    variant: int
    locale: str = Field(max_length=10)
    channel: str = Field(max_length=20)  # "chat" (every chat channel) or "sms"
    text: str
    parse_mode: str | None = Field(default="HTML", max_length=16)
    buttons: list[list[dict[str, str]]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    attachments: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    kind: str = Field(max_length=16)  # the outbox message kind (SMS rules)
    template: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class BroadcastGeoPerson(SQLModel, table=True):
    """The people a geometry audience matched (their insured item's GPS point inside it), computed once per
    broadcast with shapely and joined by the set-based resolution."""

    __tablename__ = "broadcast_geo_person"
    __table_args__ = (UniqueConstraint("broadcast_id", "person_id", name="uq_broadcast_geo_person"),)

    id: int | None = Field(default=None, primary_key=True)
    broadcast_id: int
    person_id: int


class RegionArea(SQLModel, table=True):
    """A township's (or any division's) area as GeoJSON, with its bounding box for a cheap first cut:
    insured items with no GPS point of their own are inside a geometry when their township's area is."""

    __tablename__ = "region_area"

    region_code: str = Field(primary_key=True, max_length=12)
    geometry: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float
    updated_at: datetime = Field(default_factory=utcnow)
