"""Scheduler entry points for disaster events (R-DIS-3). Deadlines and daily reports are rows; each run
acts on the due ones once (``reminded_at``/``escalated_at``, the alerts' keys, and one report per event and
local day), so running twice, late, or after a restart is harmless."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from backend.claims.catastrophe.response import ClockRun, generate_daily_reports, run_report_clocks
from backend.db import utcnow
from backend.settings import Settings


async def event_report_clocks(
    session: AsyncSession, settings: Settings, now: datetime | None = None
) -> ClockRun:
    """Remind the responsible staff before each reporting deadline and escalate after it. Commits."""
    run = await run_report_clocks(session, settings, now or utcnow())
    await session.commit()
    return run


async def event_daily_reports(session: AsyncSession, settings: Settings, now: datetime | None = None) -> int:
    """Today's daily report of every grade I or II event that has none yet. Commits each."""
    return await generate_daily_reports(session, settings, now or utcnow())
