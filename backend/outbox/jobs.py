"""Scheduler entry points for delivery housekeeping (idempotent)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from backend.outbox.service import release_expired_claims, requeue_due_failures


@dataclass(frozen=True)
class HousekeepingReport:
    released: int
    requeued: int


async def delivery_housekeeping(*, session: AsyncSession) -> HousekeepingReport:
    released = await release_expired_claims(session=session)
    requeued = await requeue_due_failures(session=session)
    return HousekeepingReport(released=released, requeued=requeued)
