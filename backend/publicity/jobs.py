"""Scheduler entry point for publicity: close the notices whose window has passed (R-PUB-1, R-ENR-8).
The window is a timestamp on the notice (``closes_at``, at least 72 hours after ``opened_at``); a run
closes each due notice once and archives its closing, so running twice, late, or after a restart is
harmless."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from backend.publicity.service import close_due


async def close_due_notices(session: AsyncSession, now: datetime | None = None) -> int:
    """How many notices this run closed."""
    return await close_due(session, now)
