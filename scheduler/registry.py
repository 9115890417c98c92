"""Every periodic job, in one list. Each finds due rows and acts through backend services, so a job that
runs twice (or late, after a restart) does no harm."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from redis.asyncio import Redis
from sqlmodel.ext.asyncio.session import AsyncSession

import backend.models  # noqa: F401  (every table: the web chat expiry reads the schema's foreign keys)
from backend.alerts.warnings.jobs import poll_cap_feeds, warnings_due
from backend.broadcasts.jobs import broadcast_fan_out
from backend.callbacks.jobs import callback_follow_up, callback_retention, callback_sampling
from backend.chatstore.jobs import expire_idle_webchats
from backend.chatstore.keys import files_root
from backend.claims.catastrophe.jobs import event_daily_reports, event_report_clocks
from backend.claims.jobs import claim_deadline_reminders
from backend.enrollment.collective.jobs import notify_pending_households
from backend.inspections.jobs import inspection_reminders, send_to_authority
from backend.outbox.jobs import delivery_housekeeping
from backend.publicity.jobs import close_due_notices
from backend.settings import Settings

JobFunction = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class JobContext:
    """What a job may need besides its session: the settings, and Redis when configured."""

    settings: Settings
    redis: Redis | None = None


@dataclass(frozen=True)
class JobSpec:
    id: str
    trigger: BaseTrigger
    function: JobFunction
    description: str
    # A lock longer than any honest run: if a runner dies holding it, the next run still happens.
    lock_seconds: int = 300
    # The function is called as function(session, context) (a JobContext) instead of function(session).
    with_context: bool = False


async def _delivery_housekeeping(session: AsyncSession) -> Any:
    return await delivery_housekeeping(session=session)


async def _claim_deadlines(session: AsyncSession) -> Any:
    return await claim_deadline_reminders(session=session)


async def _publicity_closing(session: AsyncSession) -> Any:
    return await close_due_notices(session)


async def _webchat_expiry(session: AsyncSession, context: JobContext) -> Any:
    settings = context.settings
    return await expire_idle_webchats(
        session=session,
        idle_days=settings.webchat_idle_days,
        redis=context.redis,
        # The Redis layout keeps files on the volume the bot replicas share (var/webchat).
        files_root=files_root(settings.var_dir) if context.redis is not None else None,
    )


async def _collective_notices(session: AsyncSession, context: JobContext) -> Any:
    return await notify_pending_households(session=session, link_days=context.settings.sms_link_days)


async def _callback_sampling(session: AsyncSession, context: JobContext) -> Any:
    return await callback_sampling(session, context.settings)


async def _broadcast_fan_out(session: AsyncSession, context: JobContext) -> Any:
    return await broadcast_fan_out(session, context.settings)


async def _callback_follow_up(session: AsyncSession, context: JobContext) -> Any:
    return await callback_follow_up(session, context.settings)


async def _callback_retention(session: AsyncSession, context: JobContext) -> Any:
    return await callback_retention(session, context.settings)


async def _cap_feeds(session: AsyncSession, context: JobContext) -> Any:
    return await poll_cap_feeds(session, context.settings)


async def _warnings_due(session: AsyncSession) -> Any:
    return await warnings_due(session)


async def _event_report_clocks(session: AsyncSession, context: JobContext) -> Any:
    return await event_report_clocks(session, context.settings)


async def _event_daily_reports(session: AsyncSession, context: JobContext) -> Any:
    return await event_daily_reports(session, context.settings)


async def _inspection_reminders(session: AsyncSession, context: JobContext) -> Any:
    return await inspection_reminders(session, context.settings)


async def _inspection_authority(session: AsyncSession, context: JobContext) -> Any:
    return await send_to_authority(session, context.settings)


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
    JobSpec(
        id="publicity-closing",
        trigger=IntervalTrigger(minutes=1),
        function=_publicity_closing,
        description="close publicity notices whose window (at least 72 hours from opening) has passed",
        lock_seconds=120,
    ),
    JobSpec(
        id="webchat-expiry",
        trigger=IntervalTrigger(hours=1),
        function=_webchat_expiry,
        description="delete web chats bound to no person and idle for TIANBAO_WEBCHAT_IDLE_DAYS, with their files",
        lock_seconds=1800,
        with_context=True,
    ),
    JobSpec(
        id="collective-notices",
        trigger=IntervalTrigger(minutes=5),
        function=_collective_notices,
        description="tell the households of large collective lists to confirm their rows, and when issued (R-ENR-1)",
        lock_seconds=1800,
        with_context=True,
    ),
    JobSpec(
        id="callback-sampling",
        trigger=IntervalTrigger(hours=1),
        function=_callback_sampling,
        description="the day's callback sample (R-CBK-1/2): once per local day from TIANBAO_CALLBACK_DRAW_HOUR",
        lock_seconds=1800,
        with_context=True,
    ),
    JobSpec(
        id="callback-follow-up",
        trigger=IntervalTrigger(minutes=15),
        function=_callback_follow_up,
        description="callbacks unanswered: reminder after 48 h, unreachable for staff after another 48 h (R-CBK-3)",
        lock_seconds=600,
        with_context=True,
    ),
    JobSpec(
        id="callback-retention",
        trigger=IntervalTrigger(hours=24),
        function=_callback_retention,
        description="delete callback draws older than TIANBAO_CALLBACK_RETENTION_DAYS (at least a year, R-CBK-5)",
        lock_seconds=1800,
        with_context=True,
    ),
    JobSpec(
        id="event-report-clocks",
        trigger=IntervalTrigger(minutes=1),
        function=_event_report_clocks,
        description="disaster event reports (R-DIS-3): remind before the 30 min / 1 h / 2 h deadlines, escalate after",
        lock_seconds=120,
        with_context=True,
    ),
    JobSpec(
        id="event-daily-reports",
        trigger=IntervalTrigger(minutes=15),
        function=_event_daily_reports,
        description="the daily report PDF of every grade I or II disaster event, once per local day (R-DIS-3)",
        lock_seconds=600,
        with_context=True,
    ),
    JobSpec(
        id="broadcast-fanout",
        trigger=IntervalTrigger(seconds=5),
        function=_broadcast_fan_out,
        description="broadcasts: start those due at send_at, carry on fan-outs not fully resolved, mark finished ones done",
        lock_seconds=600,
        with_context=True,
    ),
    JobSpec(
        id="cap-feeds",
        trigger=IntervalTrigger(minutes=2),
        function=_cap_feeds,
        description="poll the official CAP warning feeds (TIANBAO_CAP_FEEDS; ETag/Last-Modified, a 304 does nothing)",
        lock_seconds=110,
        with_context=True,
    ),
    JobSpec(
        id="warnings-due",
        trigger=IntervalTrigger(minutes=5),
        function=_warnings_due,
        description="expired warnings: never send pending ones; invite the warned who reported nothing to report losses",
        lock_seconds=240,
    ),
    JobSpec(
        id="inspection-reminders",
        trigger=IntervalTrigger(minutes=5),
        function=_inspection_reminders,
        description="safety inspections (R-LIA-5): visit and rectification reminders, overdue hazards to staff",
        lock_seconds=240,
        with_context=True,
    ),
    JobSpec(
        id="inspection-authority",
        trigger=IntervalTrigger(minutes=1),
        function=_inspection_authority,
        description="inspection summaries to TIANBAO_SAFETY_AUTHORITY_URL, retried until accepted (R-LIA-5)",
        lock_seconds=600,
        with_context=True,
    ),
)
