"""APScheduler 3 runner: one process or several, one run of each job at a time across all of them."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from redis.asyncio import Redis

from backend.db import Database
from scheduler.registry import JOBS, JobContext, JobSpec

log = logging.getLogger(__name__)


class JobLock:
    """Redis ``SET NX PX`` when Redis is configured (shared by every scheduler process); an in-process
    lock otherwise, which is enough for the single embedded scheduler."""

    def __init__(self, redis: Redis | None, prefix: str = "tianbao:job-lock") -> None:
        self.redis = redis
        self.prefix = prefix
        self.owner = f"{socket.gethostname()}-{os.getpid()}"
        self._local: dict[str, asyncio.Lock] = {}

    async def acquire(self, job_id: str, seconds: int) -> bool:
        if self.redis is None:
            lock = self._local.setdefault(job_id, asyncio.Lock())
            if lock.locked():
                return False
            await lock.acquire()
            return True
        return bool(await self.redis.set(f"{self.prefix}:{job_id}", self.owner, nx=True, px=seconds * 1000))

    async def release(self, job_id: str) -> None:
        if self.redis is None:
            lock = self._local.get(job_id)
            if lock is not None and lock.locked():
                lock.release()
            return
        # Delete only our own lock: compare-and-delete in one step.
        script = (
            "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
        )
        await self.redis.eval(script, 1, f"{self.prefix}:{job_id}", self.owner)


class SchedulerRunner:
    def __init__(self, db: Database, *, redis_url: str = "", jobs: tuple[JobSpec, ...] = JOBS) -> None:
        self.db = db
        self.jobs = jobs
        self._redis = Redis.from_url(redis_url) if redis_url else None
        self.lock = JobLock(self._redis)
        self.scheduler = AsyncIOScheduler(timezone="UTC")

    async def run_job(self, spec: JobSpec) -> Any:
        """Run one job now if no other runner holds it; returns its result, or None when skipped."""
        if not await self.lock.acquire(spec.id, spec.lock_seconds):
            log.debug("job %s is running elsewhere; skipped", spec.id)
            return None
        try:
            async with self.db.session() as session:
                if spec.with_context:
                    context = JobContext(settings=self.db.settings, redis=self._redis)
                    result = await spec.function(session, context)
                else:
                    result = await spec.function(session)
            log.debug("job %s: %s", spec.id, result)
            return result
        except Exception:
            log.exception("job %s failed", spec.id)
            return None
        finally:
            await self.lock.release(spec.id)

    def start(self) -> None:
        for spec in self.jobs:
            self.scheduler.add_job(
                self.run_job,
                spec.trigger,
                args=[spec],
                id=spec.id,
                name=spec.description,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=60,
                replace_existing=True,
            )
        self.scheduler.start()
        log.info("scheduler started with jobs: %s", ", ".join(spec.id for spec in self.jobs))

    async def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self._redis is not None:
            await self._redis.aclose()
