"""Official warnings as the staff API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class WarningOut(BaseModel):
    id: int
    sender: str
    identifier: str
    sent: datetime
    status: str  # Actual, Exercise, System, Test, Draft (only Actual reaches farmers)
    msg_type: str  # Alert, Update, Cancel, Ack, Error
    state: str  # models.WarningState
    for_farmers: bool
    language: str  # the <info> block chosen (zh-CN, then zh-TW / zh, then en, then the first)
    event: str
    hazard: str  # typhoon, rainstorm, cold, gale, heat, hail, earthquake, other
    urgency: str
    severity: str
    certainty: str
    sender_name: str
    headline: str
    description: str
    instruction: str
    area_desc: str
    onset: datetime | None
    expires: datetime | None
    region_codes: list[str]
    geocodes: list[list[str]]
    geometry: dict[str, Any] | None
    references: list[list[str]]
    refers_to_id: int | None
    source: str
    source_url: str | None
    auto_sent: bool
    approved_by: int | None
    approved_at: datetime | None
    broadcast_id: int | None  # the warning's fan-out: its progress and ack rates per region
    all_clear_broadcast_id: int | None
    invite_broadcast_id: int | None
    invited_at: datetime | None
    event_id: int | None  # the candidate disaster event it opened (Severe / Extreme)
    created_at: datetime


class IngestOut(BaseModel):
    duplicate: bool  # the same message (sender, identifier, sent) was received before: nothing done again
    warning: WarningOut
