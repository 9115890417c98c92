"""Scheduler entry points for callback surveys; each is safe to run twice and after a restart:

- ``callback-sampling`` (hourly): the day's draw once per local day, from ``TIANBAO_CALLBACK_DRAW_HOUR``
  (a runner that was down at that hour draws at its next run; a second run finds the day's sample);
- ``callback-follow-up`` (every 15 min): reminders after 48 h, unreachable after another 48 h;
- ``callback-retention`` (daily): removes draws older than ``TIANBAO_CALLBACK_RETENTION_DAYS`` only.
"""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from backend.callbacks import service
from backend.settings import Settings


async def callback_sampling(session: AsyncSession, settings: Settings) -> service.DrawReport:
    return await service.draw_daily_sample(session, settings)


async def callback_follow_up(session: AsyncSession, settings: Settings) -> service.FollowUpReport:
    return await service.follow_up(session, settings)


async def callback_retention(session: AsyncSession, settings: Settings) -> int:
    return await service.purge_expired(session, settings)
