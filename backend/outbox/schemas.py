"""The delivery contract: workers claim batches and report one outcome per message."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from backend.ids import Id


class OutboxItem(BaseModel):
    id: int
    channel: str
    address: str
    text: str
    parse_mode: str | None
    buttons: list[list[dict[str, str]]]
    attachments: list[dict[str, Any]]
    priority: int
    attempts: int
    claimed_until: datetime | None
    kind: str = "notice"
    # SMS: the approved template and its values in the provider's order (``backend/outbox/sms``).
    template: dict[str, Any] | None = None


class ClaimIn(BaseModel):
    worker_id: str = Field(min_length=1, max_length=64)
    limit: int = Field(default=50, ge=1, le=500)
    channels: list[str] | None = None


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # transient: network, 429, 5xx
    FAILED = "failed"  # permanent: the message itself is refused
    STOPPED = "stopped"  # the user blocked the bot


class DeliveryResult(BaseModel):
    id: Id
    outcome: Outcome
    error: str | None = Field(default=None, max_length=500)
    retry_after: float | None = Field(default=None, ge=0)
    external_message_id: str | None = None


class ResultsIn(BaseModel):
    worker_id: str = Field(min_length=1, max_length=64)
    results: list[DeliveryResult]


class ResultsOut(BaseModel):
    updated: int


class OutboxRow(BaseModel):
    id: int
    channel: str
    address: str
    status: str
    priority: int
    attempts: int
    dedupe_key: str
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
