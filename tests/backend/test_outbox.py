"""The outbox on the embedded database: enqueue in the caller's transaction, claims, outcomes, retries."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from backend.db import Database, utcnow
from backend.outbox import service
from backend.outbox.models import OutboxMessage, OutboxStatus, Priority
from backend.outbox.schemas import DeliveryResult, Outcome
from backend.people.directory import IdentityDirectory
from backend.people.models import ChatIdentity


async def _enqueue(db: Database, address: str, key: str, priority: Priority = Priority.NOTICE) -> None:
    async with db.session() as session:
        await service.enqueue(
            session=session,
            channel="webchat",
            address=address,
            text=f"hello {key}",
            dedupe_key=key,
            priority=priority,
        )
        await session.commit()


async def _rows(db: Database) -> list[OutboxMessage]:
    async with db.session() as session:
        return list((await session.exec(select(OutboxMessage).order_by(OutboxMessage.id))).all())  # type: ignore[arg-type]


async def test_enqueue_is_part_of_the_callers_transaction(db: Database) -> None:
    async with db.session() as session:
        await service.enqueue(session=session, channel="webchat", address="a", text="x", dedupe_key="k1")
        await session.rollback()
    assert await _rows(db) == []


async def test_same_dedupe_key_to_same_recipient_is_queued_once(db: Database) -> None:
    await _enqueue(db, "a", "policy-1-issued")
    await _enqueue(db, "a", "policy-1-issued")
    await _enqueue(db, "b", "policy-1-issued")
    rows = await _rows(db)
    assert [(r.address, r.dedupe_key) for r in rows] == [("a", "policy-1-issued"), ("b", "policy-1-issued")]


async def test_claim_takes_replies_before_bulk_and_leases_them(db: Database) -> None:
    await _enqueue(db, "a", "bulk-1", Priority.BULK)
    await _enqueue(db, "b", "bulk-2", Priority.BULK)
    await _enqueue(db, "c", "reply-1", Priority.REPLY)
    async with db.session() as session:
        claimed = await service.claim_batch(session=session, worker_id="w1", limit=2, lease_seconds=60)
    assert [c.dedupe_key for c in claimed] == ["reply-1", "bulk-1"]
    assert all(c.status == OutboxStatus.SENDING and c.claimed_by == "w1" and c.attempts == 1 for c in claimed)
    async with db.session() as session:
        second = await service.claim_batch(session=session, worker_id="w2", limit=10, lease_seconds=60)
    assert [c.dedupe_key for c in second] == ["bulk-2"]


async def test_results_from_another_worker_are_ignored(db: Database, directory: IdentityDirectory) -> None:
    await _enqueue(db, "a", "k")
    async with db.session() as session:
        (row,) = await service.claim_batch(session=session, worker_id="w1", limit=5, lease_seconds=60)
        updated = await service.record_results(
            session=session,
            directory=directory,
            worker_id="intruder",
            results=[DeliveryResult(id=row.id or 0, outcome=Outcome.SENT)],
            max_attempts=3,
        )
    assert updated == 0
    assert (await _rows(db))[0].status == OutboxStatus.SENDING


async def test_retry_backs_off_and_honours_retry_after_then_gives_up(
    db: Database, directory: IdentityDirectory
) -> None:
    await _enqueue(db, "a", "k")
    async with db.session() as session:
        (row,) = await service.claim_batch(session=session, worker_id="w", limit=1, lease_seconds=60)
        await service.record_results(
            session=session,
            directory=directory,
            worker_id="w",
            max_attempts=2,
            results=[DeliveryResult(id=row.id or 0, outcome=Outcome.RETRY, error="429", retry_after=40)],
        )
    failed = (await _rows(db))[0]
    assert failed.status == OutboxStatus.FAILED and failed.last_error == "429"
    assert failed.next_attempt_at is not None
    wait = failed.next_attempt_at - utcnow()
    assert timedelta(seconds=35) < wait <= timedelta(seconds=40)
    # Not due yet: the housekeeping job leaves it alone.
    async with db.session() as session:
        assert await service.requeue_due_failures(session=session) == 0
        failed.next_attempt_at = utcnow() - timedelta(seconds=1)
        session.add(failed)
        await session.commit()
        assert await service.requeue_due_failures(session=session) == 1
        (again,) = await service.claim_batch(session=session, worker_id="w", limit=1, lease_seconds=60)
        assert again.attempts == 2
        await service.record_results(
            session=session,
            directory=directory,
            worker_id="w",
            max_attempts=2,
            results=[DeliveryResult(id=again.id or 0, outcome=Outcome.RETRY, error="still down")],
        )
    final = (await _rows(db))[0]
    assert final.status == OutboxStatus.FAILED and final.next_attempt_at is None


async def test_stopped_recipient_is_marked_and_its_queue_stopped(
    db: Database, directory: IdentityDirectory
) -> None:
    async with db.session() as session:
        session.add(ChatIdentity(channel="webchat", external_id="a", address="a"))
        await session.commit()
    await _enqueue(db, "a", "k1")
    await _enqueue(db, "a", "k2")
    async with db.session() as session:
        first = (await service.claim_batch(session=session, worker_id="w", limit=1, lease_seconds=60))[0]
        await service.record_results(
            session=session,
            directory=directory,
            worker_id="w",
            max_attempts=3,
            results=[
                DeliveryResult(id=first.id or 0, outcome=Outcome.STOPPED, error="bot was blocked by the user")
            ],
        )
    rows = await _rows(db)
    assert [r.status for r in rows] == [OutboxStatus.STOPPED, OutboxStatus.STOPPED]
    async with db.session() as session:
        identity = (await session.exec(select(ChatIdentity))).one()
    assert identity.stopped_at is not None


async def test_expired_lease_is_released_for_another_worker(db: Database) -> None:
    await _enqueue(db, "a", "k")
    async with db.session() as session:
        (row,) = await service.claim_batch(session=session, worker_id="dead", limit=1, lease_seconds=60)
        assert await service.release_expired_claims(session=session) == 0
        row.claimed_until = utcnow() - timedelta(seconds=1)
        session.add(row)
        await session.commit()
        assert await service.release_expired_claims(session=session) == 1
        (again,) = await service.claim_batch(session=session, worker_id="alive", limit=1, lease_seconds=60)
    assert again.claimed_by == "alive"
