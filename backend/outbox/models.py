"""The outbox: every message the system sends is a row written in the same transaction as its cause."""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from backend.db import utcnow


class OutboxStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"  # the provider's receipt (SMS): on the phone
    FAILED = "failed"
    STOPPED = "stopped"
    HELD = "held"  # a paused broadcast's row: not claimable until the broadcast resumes


class Priority(IntEnum):
    """Lower goes first: a reply to the user's own action beats a notice, which beats bulk fan-out."""

    REPLY = 0
    NOTICE = 50
    BULK = 100


class MessageKind(StrEnum):
    """What rules a message is under (SMS above all): a one-time code is limited per number; a notice the
    law requires goes to a number that stopped bulk texts; bulk waits out quiet hours; a warning does not."""

    OTP = "otp"
    NOTICE = "notice"
    BULK = "bulk"
    WARNING = "warning"


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("channel", "address", "dedupe_key", name="uq_outbox_recipient_dedupe"),
        Index("ix_outbox_due", "status", "priority", "next_attempt_at"),
        # Delivery receipts name the provider's serial id; a queued row has none yet, so a fan-out's million
        # rows add nothing to this index (partial), as to no index on identity_id (never looked up by it).
        Index(
            "ix_outbox_external",
            "channel",
            "external_message_id",
            postgresql_where=text("external_message_id IS NOT NULL"),
            sqlite_where=text("external_message_id IS NOT NULL"),
        ),
        # A broadcast's rows: pause, resume, cancel and progress (backend/broadcasts).
        Index("ix_outbox_broadcast", "broadcast_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    address: str = Field(max_length=64)
    identity_id: int | None = None
    text: str
    parse_mode: str | None = Field(default="HTML", max_length=16)
    # Neutral JSON: [[{"text": ..., "callback_data": ...} | {"text": ..., "url": ...}]]
    buttons: list[list[dict[str, str]]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # [{"kind": "document" | "photo", "name": ..., "url": ...}]
    attachments: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    priority: int = Field(default=Priority.NOTICE.value)
    kind: str = Field(default=MessageKind.NOTICE.value, max_length=16)
    # SMS only: {"key": template key, "locale": ..., "params": [values in the provider's order]}; ``text``
    # holds the same message as the recipient reads it.
    template: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    dedupe_key: str = Field(max_length=128)
    status: str = Field(default=OutboxStatus.QUEUED.value, max_length=16)
    attempts: int = 0
    # None once the row is final (sent, stopped, or failed for good).
    next_attempt_at: datetime | None = Field(default_factory=utcnow)
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_until: datetime | None = None
    last_error: str | None = None
    external_message_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    broadcast_id: int | None = None  # the fan-out that wrote it (backend/broadcasts), else None
