"""Staff alerts as the API shows them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class AlertOut(BaseModel):
    id: int
    kind: str
    region_code: str
    title: str
    body: str
    claim_id: int | None
    event_id: int | None
    created_at: datetime
    acknowledged_by: int | None
    acknowledged_at: datetime | None
