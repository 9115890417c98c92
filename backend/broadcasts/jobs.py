"""Scheduler entry point for broadcasts: start the approved ones whose ``send_at`` has come, carry on the
fan-outs not fully resolved (after "send" answered, or a restart), and mark done the ones with nothing
left to send. Every step is decided from rows (statuses, ``resolved_through``, outbox rows), so a run
twice or late is harmless."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from backend.broadcasts import service
from backend.settings import Settings


async def broadcast_fan_out(session: AsyncSession, settings: Settings) -> dict[str, int]:
    started = await service.start_due(session, settings=settings)
    written = await service.continue_all(session, settings=settings)
    done = await service.finish_done(session)
    return {"started": started, "written": written, "done": done}
