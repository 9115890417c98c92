"""Enqueue in the caller's transaction; claim with leases; record one outcome per recipient.

Exactly-once is impossible across a network send, so the design narrows the window: a claim is a lease;
a worker checks its lease before each send and reports right after; only a lease that expired (its
worker died or stalled past ``delivery_lease_seconds``) is released for another worker. Dedupe keys make
a second enqueue of the same notice to the same recipient a no-op.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.db import utcnow
from backend.outbox.models import MessageKind, OutboxMessage, OutboxStatus, Priority
from backend.outbox.schemas import DeliveryResult, Outcome
from backend.people.directory import IdentityDirectory
from backend.people.models import ChatIdentity
from backend.people.service import mark_stopped

BACKOFF_SECONDS: tuple[int, ...] = (5, 30, 120, 600, 1800, 3600)


def backoff_after(attempts: int) -> timedelta:
    """Wait before retry number ``attempts`` (1-based): 5 s, 30 s, 2 min, 10 min, 30 min, 1 h."""
    index = min(max(attempts, 1), len(BACKOFF_SECONDS)) - 1
    return timedelta(seconds=BACKOFF_SECONDS[index])


def _insert_ignoring_duplicates(session: AsyncSession) -> Any:
    dialect = session.get_bind().dialect.name
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert(table)


async def enqueue(
    *,
    session: AsyncSession,
    channel: str,
    address: str,
    text: str,
    dedupe_key: str,
    priority: Priority = Priority.NOTICE,
    buttons: list[list[dict[str, str]]] | None = None,
    attachments: list[dict[str, Any]] | None = None,
    identity_id: int | None = None,
    parse_mode: str | None = "HTML",
) -> None:
    """Queue one message in the caller's transaction; a repeat of (recipient, dedupe_key) is ignored."""
    await enqueue_many(
        session=session,
        rows=[
            {
                "channel": channel,
                "address": address,
                "text": text,
                "dedupe_key": dedupe_key,
                "priority": int(priority),
                "buttons": buttons or [],
                "attachments": attachments or [],
                "identity_id": identity_id,
                "parse_mode": parse_mode,
            }
        ],
    )


async def enqueue_many(*, session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Set-based enqueue for fan-outs: one multi-row INSERT per call, duplicates skipped."""
    if not rows:
        return
    now = utcnow()
    values = [
        {
            "buttons": [],
            "attachments": [],
            "identity_id": None,
            "parse_mode": "HTML",
            "priority": int(Priority.BULK),
            "kind": MessageKind.NOTICE.value,
            "template": None,
            **row,
            "status": OutboxStatus.QUEUED.value,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for row in rows
    ]
    statement = _insert_ignoring_duplicates(session).values(values)
    statement = statement.on_conflict_do_nothing(index_elements=["channel", "address", "dedupe_key"])
    await session.execute(statement)


async def enqueue_for_identity(
    *,
    session: AsyncSession,
    identity: ChatIdentity,
    text: str,
    dedupe_key: str,
    priority: Priority = Priority.NOTICE,
    buttons: list[list[dict[str, str]]] | None = None,
    attachments: list[dict[str, Any]] | None = None,
) -> None:
    await enqueue(
        session=session,
        channel=identity.channel,
        address=identity.address,
        text=text,
        dedupe_key=dedupe_key,
        priority=priority,
        buttons=buttons,
        attachments=attachments,
        identity_id=identity.id,
    )


async def claim_batch(
    *,
    session: AsyncSession,
    worker_id: str,
    limit: int,
    lease_seconds: int,
    channels: Sequence[str] | None = None,
    held_sms_kinds: Sequence[str] = (),
) -> list[OutboxMessage]:
    """Lease up to ``limit`` due messages, replies before bulk. PostgreSQL skips rows another worker
    holds (FOR UPDATE SKIP LOCKED); SQLite serialises writers, so the UPDATE itself is the lock."""
    now = utcnow()
    due = (
        select(OutboxMessage.id)  # type: ignore[call-overload]
        .where(col(OutboxMessage.status) == OutboxStatus.QUEUED.value)
        .where(col(OutboxMessage.next_attempt_at) <= now)
        .order_by(col(OutboxMessage.priority), col(OutboxMessage.id))
        .limit(limit)
    )
    if channels:
        due = due.where(col(OutboxMessage.channel).in_(list(channels)))
    if held_sms_kinds:  # quiet hours: bulk texts stay queued until morning
        due = due.where(
            ~(col(OutboxMessage.channel) == "sms") | col(OutboxMessage.kind).not_in(held_sms_kinds)
        )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = list((await session.execute(due)).scalars().all())
    if not ids:
        await session.commit()
        return []
    lease = now + timedelta(seconds=lease_seconds)
    await session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.id).in_(ids))
        .where(col(OutboxMessage.status) == OutboxStatus.QUEUED.value)
        .values(
            status=OutboxStatus.SENDING.value,
            claimed_by=worker_id,
            claimed_until=lease,
            attempts=OutboxMessage.attempts + 1,
        )
    )
    await session.commit()
    claimed = await session.execute(
        select(OutboxMessage)
        .where(col(OutboxMessage.id).in_(ids))
        .where(col(OutboxMessage.claimed_by) == worker_id)
        .where(col(OutboxMessage.status) == OutboxStatus.SENDING.value)
        .order_by(col(OutboxMessage.priority), col(OutboxMessage.id))
    )
    return list(claimed.scalars().all())


async def record_results(
    *,
    session: AsyncSession,
    directory: IdentityDirectory,
    worker_id: str,
    results: Sequence[DeliveryResult],
    max_attempts: int,
) -> int:
    """Apply each outcome to a message this worker still holds; others' leases are left alone."""
    if not results:
        return 0
    ids = [r.id for r in results]
    held = await session.execute(
        select(OutboxMessage)
        .where(col(OutboxMessage.id).in_(ids))
        .where(col(OutboxMessage.claimed_by) == worker_id)
        .where(col(OutboxMessage.status) == OutboxStatus.SENDING.value)
    )
    rows = {row.id: row for row in held.scalars().all()}
    now = utcnow()
    for result in results:
        row = rows.get(result.id)
        if row is not None:
            await _apply_outcome(
                session=session,
                directory=directory,
                row=row,
                result=result,
                now=now,
                max_attempts=max_attempts,
            )
    await session.commit()
    return len(rows)


async def _apply_outcome(
    *,
    session: AsyncSession,
    directory: IdentityDirectory,
    row: OutboxMessage,
    result: DeliveryResult,
    now: datetime,
    max_attempts: int,
) -> None:
    row.claimed_by = None
    row.claimed_until = None
    row.last_error = result.error
    if result.outcome is Outcome.SENT:
        row.status, row.sent_at, row.next_attempt_at = OutboxStatus.SENT.value, now, None
        row.external_message_id = result.external_message_id
    elif result.outcome is Outcome.STOPPED:
        row.status, row.next_attempt_at = OutboxStatus.STOPPED.value, None
        await mark_stopped(session=session, directory=directory, channel=row.channel, address=row.address)
        await _stop_queued_for(session=session, channel=row.channel, address=row.address)
    elif result.outcome is Outcome.RETRY and row.attempts < max_attempts:
        # A failure waiting for its retry; the scheduler re-queues it when due.
        wait = max(backoff_after(row.attempts), timedelta(seconds=result.retry_after or 0))
        row.status, row.next_attempt_at = OutboxStatus.FAILED.value, now + wait
    else:
        row.status, row.next_attempt_at = OutboxStatus.FAILED.value, None


async def _stop_queued_for(*, session: AsyncSession, channel: str, address: str) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.channel) == channel, col(OutboxMessage.address) == address)
        .where(col(OutboxMessage.status).in_([OutboxStatus.QUEUED.value, OutboxStatus.FAILED.value]))
        .values(
            status=OutboxStatus.STOPPED.value, next_attempt_at=None, last_error="recipient stopped the bot"
        )
    )


async def release_expired_claims(*, session: AsyncSession) -> int:
    """Give back messages whose worker died mid-batch (lease expired) so another worker sends them."""
    now = utcnow()
    result = await session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.status) == OutboxStatus.SENDING.value)
        .where(col(OutboxMessage.claimed_until) < now)
        .values(status=OutboxStatus.QUEUED.value, claimed_by=None, claimed_until=None, next_attempt_at=now)
    )
    await session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def requeue_due_failures(*, session: AsyncSession) -> int:
    """Put failures whose backoff has passed back in the queue."""
    now = utcnow()
    result = await session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.status) == OutboxStatus.FAILED.value)
        .where(
            and_(col(OutboxMessage.next_attempt_at).is_not(None), col(OutboxMessage.next_attempt_at) <= now)
        )
        .values(status=OutboxStatus.QUEUED.value)
    )
    await session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def status_counts(*, session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)  # type: ignore[call-overload]
    )
    return {status: count for status, count in rows.all()}


async def list_messages(
    *, session: AsyncSession, status: str | None, address: str | None, limit: int
) -> list[OutboxMessage]:
    query = select(OutboxMessage).order_by(col(OutboxMessage.id).desc()).limit(limit)
    if status:
        query = query.where(col(OutboxMessage.status) == status)
    if address:
        query = query.where(col(OutboxMessage.address) == address)
    return list((await session.execute(query)).scalars().all())
