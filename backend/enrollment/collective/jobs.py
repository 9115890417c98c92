"""The household notices of large lists (R-ENR-1): an upload or a payment tells its households itself
when the list is small (``NOTIFY_INLINE_MAX``); a larger list is left to this job, so the request answers
in seconds. Idempotent: the timestamps on the enrollment say what was sent, and the outbox's dedupe keys
drop a repeat after a crash between the notices and the timestamp."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.db import utcnow
from backend.enrollment.collective.models import CollectiveEnrollment, CollectiveStatus
from backend.enrollment.collective.service import notify_households

# Lists up to this many households are told in the request that stored or issued them.
NOTIFY_INLINE_MAX = 2_000


async def notify_pending_households(*, session: AsyncSession, link_days: int) -> dict[str, Any]:
    """Tell the households of every enrollment whose notices are still due; one enrollment a commit."""
    told = 0
    due = select(CollectiveEnrollment).where(
        col(CollectiveEnrollment.status) != CollectiveStatus.CANCELLED.value,
        col(CollectiveEnrollment.households_notified_at).is_(None)
        | (
            (col(CollectiveEnrollment.status) == CollectiveStatus.ISSUED.value)
            & col(CollectiveEnrollment.issued_notified_at).is_(None)
        ),
    )
    for collective in (await session.exec(due)).all():
        if collective.households_notified_at is None:
            told += await notify_households(
                session, collective=collective, kind="confirm", link_days=link_days
            )
            collective.households_notified_at = utcnow()
        if collective.status == CollectiveStatus.ISSUED and collective.issued_notified_at is None:
            told += await notify_households(
                session, collective=collective, kind="issued", link_days=link_days
            )
            collective.issued_notified_at = utcnow()
        await session.commit()
    return {"households_told": told}
