"""The scheduler's registry and its first job on the embedded database."""

from __future__ import annotations

from datetime import timedelta

from backend.db import Database, utcnow
from backend.outbox import service
from backend.outbox.models import OutboxStatus
from scheduler.registry import JOBS
from scheduler.runner import SchedulerRunner


def test_every_job_is_registered_once_with_a_description() -> None:
    ids = [job.id for job in JOBS]
    assert len(ids) == len(set(ids))
    assert "delivery-housekeeping" in ids
    assert all(job.description for job in JOBS)


async def test_housekeeping_releases_dead_claims_and_requeues_due_failures(db: Database) -> None:
    async with db.session() as session:
        for key in ("a", "b"):
            await service.enqueue(session=session, channel="webchat", address=key, text=key, dedupe_key=key)
        await session.commit()
        dead, failed = await service.claim_batch(session=session, worker_id="dead", limit=2, lease_seconds=60)
        dead.claimed_until = utcnow() - timedelta(seconds=1)
        failed.status, failed.next_attempt_at = OutboxStatus.FAILED.value, utcnow() - timedelta(seconds=1)
        failed.claimed_by = None
        session.add_all([dead, failed])
        await session.commit()
    runner = SchedulerRunner(db)
    job = next(j for j in JOBS if j.id == "delivery-housekeeping")
    report = await runner.run_job(job)
    assert (report.released, report.requeued) == (1, 1)
    again = await runner.run_job(job)
    assert (again.released, again.requeued) == (0, 0), "running twice does no harm"
    async with db.session() as session:
        claimed = await service.claim_batch(session=session, worker_id="alive", limit=5, lease_seconds=60)
    assert sorted(m.dedupe_key for m in claimed) == ["a", "b"]
    await runner.shutdown()


async def test_in_process_lock_skips_an_overlapping_run(db: Database) -> None:
    runner = SchedulerRunner(db)
    assert await runner.lock.acquire("x", 10)
    assert not await runner.lock.acquire("x", 10)
    await runner.lock.release("x")
    assert await runner.lock.acquire("x", 10)
