"""Staff alerts as the API shows them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class AlertOut(BaseModel):
    id: int
    kind: str
    region_code: str
    title: str
    body: str
    claim_id: int | None
    event_id: int | None
    identity_id: int | None  # an insured's message: the chat a reply goes to
    created_at: datetime
    acknowledged_by: int | None
    acknowledged_at: datetime | None


class MessageIn(BaseModel):
    """Free text an insured typed that no step understood: it goes to the staff of their region."""

    text: str = Field(min_length=1, max_length=4000)
    update_key: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9:_-]+$")


class MessageOut(BaseModel):
    recorded: bool  # False: the same update was recorded before (a resend)


class ReplyIn(BaseModel):
    text: str = Field(min_length=1, max_length=1000)
