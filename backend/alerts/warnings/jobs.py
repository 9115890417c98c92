"""Scheduler entry points for official warnings; each is safe to run twice and after a restart:

- ``cap-feeds`` (every 2 min): poll ``TIANBAO_CAP_FEEDS`` with conditional requests (a 304 does nothing);
- ``warnings-due`` (every 5 min): pending warnings past their expiry are never sent; sent ones past it
  invite those who got them and reported nothing since to report their losses (once).
"""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from backend.alerts.warnings import feeds, service
from backend.settings import Settings


async def poll_cap_feeds(session: AsyncSession, settings: Settings) -> list[feeds.FeedReport]:
    return await feeds.poll_feeds(session, settings)


async def warnings_due(session: AsyncSession) -> service.DueReport:
    return await service.act_on_due(session)
