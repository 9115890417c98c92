"""Every periodic job, in one list. Each finds due rows and acts through backend services, so a job that
runs twice (or late, after a restart) does no harm."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.claims.jobs import claim_deadline_reminders
from backend.outbox.jobs import delivery_housekeeping

JobFunction = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class JobSpec:
    id: str
    trigger: BaseTrigger
    function: JobFunction
    description: str
    # A lock longer than any honest run: if a runner dies holding it, the next run still happens.
    lock_seconds: int = 300


async def _delivery_housekeeping(session: AsyncSession) -> Any:
    return await delivery_housekeeping(session=session)


async def _claim_deadlines(session: AsyncSession) -> Any:
    return await claim_deadline_reminders(session=session)


JOBS: tuple[JobSpec, ...] = (
    JobSpec(
        id="delivery-housekeeping",
        trigger=IntervalTrigger(seconds=10),
        function=_delivery_housekeeping,
        description="release delivery claims left by a dead worker; re-queue failures whose backoff passed",
        lock_seconds=60,
    ),
    JobSpec(
        id="claim-deadlines",
        trigger=IntervalTrigger(minutes=5),
        function=_claim_deadlines,
        description="remind before claim deadlines (survey 24 h, settlement 20 days, payment 10 days), escalate after",
        lock_seconds=240,
    ),
)
