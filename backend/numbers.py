"""Business numbers people read and quote (AP…, PL…, CL…, DN…): prefix, the day, the row id.

The day is the day where people live (TIANBAO_TIMEZONE), not the UTC day: a policy issued at 06:42 in
Beijing on 12-02 is numbered PL20261202…, like the date printed on it."""

from __future__ import annotations

from datetime import datetime

from backend.db import utcnow
from messages import local_date


def business_number(prefix: str, row_id: int | None, at: datetime | None = None) -> str:
    if row_id is None:
        raise ValueError("a business number needs the row's id (flush first)")
    return f"{prefix}{local_date(at or utcnow()):%Y%m%d}{row_id:07d}"
