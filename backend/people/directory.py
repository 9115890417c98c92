"""The identity directory: who is talking, answered without a database round trip when nothing changed.

Every chat step starts by resolving its chat identity, and every ``/start`` refreshes it. On a warm
directory a returning user costs no query: the identity comes from the cache, and the one thing a
repeated ``/start`` changes, ``last_seen_at``, is written behind in batches (one statement a second).
Anything else a ``/start`` would change (a new address or name, a language to follow, a user who had
blocked the bot) takes the written path at once, in the request.

Coherence: every write to ``chat_identity`` goes through ``backend.people.service``, which drops the
cached entries it touched after committing. The cache is in memory when the process is alone (the
embedded default: API, worker and scheduler in one process) and in Redis when Redis is configured, so
API replicas share one view. An entry also expires after ``ttl_seconds``, which bounds what a missed
drop could cost (a language or phone shown as it was a few minutes earlier).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol

from redis.asyncio import Redis
from sqlalchemy import and_, bindparam, case, update
from sqlalchemy.sql.dml import UpdateBase

from backend.db import Database
from backend.direct_writes import PreparedWrite, Row
from backend.people.models import ChatIdentity
from messages import mask_phone

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (channel, external_id)
REDIS_PREFIX = "tianbao:identity:"


@dataclass(frozen=True)
class IdentityRecord:
    """What the bot is told about an identity, and what decides whether a ``/start`` must write.

    The phone is kept masked: the cache (possibly Redis) never holds a whole personal number.
    """

    id: int
    channel: str
    external_id: str
    address: str
    first_name: str | None
    locale: str
    locale_chosen: bool
    phone_masked: str | None
    phone_verified: bool
    person_id: int | None
    stopped: bool

    @property
    def key(self) -> Key:
        return (self.channel, self.external_id)

    @classmethod
    def of(cls, identity: ChatIdentity) -> IdentityRecord:
        assert identity.id is not None
        return cls.from_row(identity.model_dump())

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> IdentityRecord:
        """From a row of ``chat_identity`` as the database returned it (an upsert's RETURNING): only
        whether a time is set matters here, so times are never parsed."""
        return cls(
            id=row["id"],
            channel=row["channel"],
            external_id=row["external_id"],
            address=row["address"],
            first_name=row["first_name"],
            locale=row["locale"],
            locale_chosen=bool(row["locale_chosen"]),
            phone_masked=mask_phone(row["phone"]) or None,
            phone_verified=row["phone_verified_at"] is not None,
            person_id=row["person_id"],
            stopped=row["stopped_at"] is not None,
        )


class IdentityCache(Protocol):
    async def get(self, key: Key) -> IdentityRecord | None: ...

    async def put(self, record: IdentityRecord) -> None: ...

    async def drop(self, keys: Iterable[Key]) -> None: ...


class MemoryIdentityCache:
    """One process's view, bounded: the least recently stored entries go first."""

    def __init__(self, *, ttl_seconds: float, max_entries: int = 100_000) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[Key, tuple[float, IdentityRecord]] = OrderedDict()

    async def get(self, key: Key) -> IdentityRecord | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, record = entry
        if time.monotonic() >= expires_at:
            del self._entries[key]
            return None
        return record

    async def put(self, record: IdentityRecord) -> None:
        self._entries[record.key] = (time.monotonic() + self.ttl, record)
        self._entries.move_to_end(record.key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def drop(self, keys: Iterable[Key]) -> None:
        for key in keys:
            self._entries.pop(key, None)


class RedisIdentityCache:
    """Shared by every process that talks to the same Redis: API replicas see each other's drops."""

    def __init__(self, redis: Redis, *, ttl_seconds: float) -> None:
        self.redis = redis
        self.ttl_ms = max(1, int(ttl_seconds * 1000))

    @staticmethod
    def _name(key: Key) -> str:
        return f"{REDIS_PREFIX}{key[0]}:{key[1]}"

    async def get(self, key: Key) -> IdentityRecord | None:
        raw = await self.redis.get(self._name(key))
        if raw is None:
            return None
        try:
            return IdentityRecord(**json.loads(raw))
        except (TypeError, ValueError):
            return None  # written by another version: treat as a miss, the next write replaces it

    async def put(self, record: IdentityRecord) -> None:
        await self.redis.set(self._name(record.key), json.dumps(asdict(record)), px=self.ttl_ms)

    async def drop(self, keys: Iterable[Key]) -> None:
        names = [self._name(key) for key in keys]
        if names:
            await self.redis.delete(*names)


_identities = ChatIdentity.__table__  # type: ignore[attr-defined]

# A user seen after they were marked stopped is back (they could not have written otherwise); one
# marked stopped after this sighting stays stopped.
_touch = (
    update(_identities)
    .where(and_(_identities.c.id == bindparam("b_id"), _identities.c.last_seen_at < bindparam("b_seen")))
    .values(
        last_seen_at=bindparam("b_seen"),
        stopped_at=case(
            (_identities.c.stopped_at < bindparam("b_seen"), None), else_=_identities.c.stopped_at
        ),
    )
)


class PresenceBuffer:
    """``last_seen_at`` written behind: the newest sighting per identity, flushed as one statement
    through the database's direct writer (prebuilt, off the event loop, the write lock held only for
    the statement itself, so first contacts are seldom kept waiting by it).

    A flush runs every ``interval`` seconds from the app's lifespan, or sooner once ``max_pending``
    sightings wait; no request waits for it. An app run without its lifespan (as in tests) flushes
    inline instead, once ``max_pending`` wait or the oldest is overdue. A crash loses at most the
    sightings of the last interval, nothing else.
    """

    def __init__(self, db: Database, *, interval: float = 1.0, max_pending: int = 1000) -> None:
        self.db = db
        self.interval = interval
        self.max_pending = max_pending
        self._pending: dict[int, datetime] = {}
        self._oldest = 0.0
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._due = asyncio.Event()
        self._prepared: PreparedWrite | None = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def note(self, identity_id: int, seen_at: datetime) -> None:
        if not self._pending:
            self._oldest = time.monotonic()
        self._pending[identity_id] = seen_at
        if self._task is not None:
            # The flush task writes; a request never waits for it (a flush of a thousand sightings
            # holds the database for tens of milliseconds). A full buffer only makes it start early.
            if len(self._pending) >= self.max_pending:
                self._due.set()
            return
        if len(self._pending) >= self.max_pending or time.monotonic() - self._oldest >= self.interval:
            await self.flush()

    async def flush(self) -> int:
        async with self._lock:
            if not self._pending:
                return 0
            batch, self._pending = self._pending, {}
            rows = [{"b_id": identity_id, "b_seen": seen} for identity_id, seen in batch.items()]
            try:
                if self._prepared is None:
                    self._prepared = PreparedWrite.compile(_touch, self.db.engine.dialect)
                await self.db.direct.write_many(self._prepared, rows)
            except Exception:
                for identity_id, seen in batch.items():  # kept for the next round; newer sightings win
                    self._pending.setdefault(identity_id, seen)
                raise
            return len(rows)

    async def _wake(self, stopping: asyncio.Event) -> None:
        """Until stopping, or until the buffer is full."""
        waiters = [asyncio.ensure_future(stopping.wait()), asyncio.ensure_future(self._due.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    def start(self) -> None:
        if self._task is None:
            self._stopping = asyncio.Event()
            self._due = asyncio.Event()
            self._task = asyncio.create_task(self._run(self._stopping), name="presence-flush")

    async def stop(self) -> None:
        """Let a flush under way finish (cancelling it mid-statement would strand its connection's
        transaction), then write what is left."""
        if self._task is not None:
            self._stopping.set()
            await self._task
            self._task = None
        await self.flush()

    async def _run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake(stopping), timeout=self.interval)
            self._due.clear()
            try:
                await self.flush()
            except Exception:  # the next round retries; sightings of a failed batch are only times
                log.exception("writing last_seen_at failed")


_Queued = tuple[PreparedWrite, dict[str, Any], "asyncio.Future[Row]"]


class GroupWriter:
    """Single-row statements that return their row, committed together when they arrive together.

    Writes queue up while one transaction is under way, and the next transaction takes all of them
    (group commit): alone, a write costs what it always did; fifty users starting at once share one
    commit instead of queueing for SQLite's write lock fifty times. The writing runs in a task of its
    own, so a caller that gives up (a client gone) never strands the others or a half-done statement.
    Statements run through the database's direct writer (``backend.direct_writes``), compiled once.
    When nothing is in flight and the writer can finish without waiting (SQLite with its write lock
    free), a write is done in the caller's step: no queue, no task, no hop through the event loop.
    """

    def __init__(self, db: Database, *, max_batch: int = 200) -> None:
        self.db = db
        self.max_batch = max_batch
        self._queue: list[_Queued] = []
        self._drainer: asyncio.Task[None] | None = None
        self._prepared: dict[UpdateBase, PreparedWrite] = {}

    async def write(self, statement: UpdateBase, parameters: dict[str, Any]) -> Row:
        prepared = self._prepared.get(statement)
        if prepared is None:
            prepared = self._prepared[statement] = PreparedWrite.compile(statement, self.db.engine.dialect)
        if self._drainer is None:  # nothing in flight: a write that needs no waiting is done at once
            done = self.db.direct.write_now([(prepared, parameters)])
            if done is not None:
                return done[0]
        future: asyncio.Future[Row] = asyncio.get_running_loop().create_future()
        self._queue.append((prepared, parameters, future))
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain(), name="identity-writes")
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                await self._write_batch(batch)
        finally:
            self._drainer = None

    async def _write_batch(self, batch: list[_Queued]) -> None:
        try:
            rows = await self.db.direct.write([(prepared, values) for prepared, values, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][2], error=exc)
                return
            for item in batch:  # one bad write must not fail the others: each on its own
                await self._write_batch([item])
            return
        for (_prepared, _values, future), row in zip(batch, rows, strict=True):
            _settle(future, row=row)


def _settle(future: asyncio.Future[Row], *, row: Row | None = None, error: Exception | None = None) -> None:
    if future.done():  # its caller gave up waiting
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(row)  # type: ignore[arg-type]


@dataclass
class IdentityDirectory:
    cache: IdentityCache
    presence: PresenceBuffer
    writer: GroupWriter

    @classmethod
    def for_app(cls, db: Database, redis: Redis | None, *, ttl_seconds: float) -> IdentityDirectory:
        cache: IdentityCache = (
            RedisIdentityCache(redis, ttl_seconds=ttl_seconds)
            if redis is not None
            else MemoryIdentityCache(ttl_seconds=ttl_seconds)
        )
        return cls(cache=cache, presence=PresenceBuffer(db), writer=GroupWriter(db))
