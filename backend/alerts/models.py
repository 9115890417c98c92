"""Staff alerts (table ``staff_alert``): claims deadlines, accidents, catastrophes; later CAP warnings."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from backend.db import utcnow


class StaffAlert(SQLModel, table=True):
    """Something staff must see at once (R-LIA-6 accident, R-CLM-5 catastrophe, overdue deadlines).
    Listed by the API for the staff whose region covers it, and sent to the staff alert chat when set."""

    __tablename__ = "staff_alert"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=40, index=True)
    region_code: str = Field(max_length=12, index=True)
    title: str = Field(max_length=200)
    body: str = Field(default="", max_length=2000)
    claim_id: int | None = Field(default=None, foreign_key="claim.id", index=True)
    event_id: int | None = Field(default=None, foreign_key="disaster_event.id")
    # A message an insured left in chat (kind ``insured_message``): staff answer that chat identity.
    identity_id: int | None = Field(default=None, foreign_key="chat_identity.id", index=True)
    dedupe_key: str = Field(unique=True, max_length=128)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    acknowledged_by: int | None = None
    acknowledged_at: datetime | None = None
