"""Direct writes: prebuilt single-row statements run on the database driver, a batch per transaction.

For the one write on the hottest path (a user's first ``/start``), SQLAlchemy's async session costs far
more than the statement: about 1 ms of greenlet bridging, pooling, result building and, on SQLite,
six aiosqlite thread hand-offs, against about 60 µs for the INSERT and its COMMIT. A direct writer
keeps the statement SQLAlchemy built (compiled once per dialect, its bind processors applied, so a
row written here is the row the ORM would have written) and only skips the machinery around it:

- SQLite file: connections of its own, with the engine's pragmas; a batch (``BEGIN IMMEDIATE``, the
  statements, ``COMMIT``) runs on the event loop when it is small and the write lock is free, else on
  a thread of its own (see :class:`SqliteDirectWriter`).
- PostgreSQL (asyncpg): a connection from the engine's pool, the statements on the asyncpg
  connection inside one transaction.
- Anything else (an in-memory SQLite database, which a second connection would not see): the
  engine's own connection, through SQLAlchemy Core.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase

Row = Mapping[str, Any]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Bind:
    name: str
    required: bool  # a bindparam() the caller must give; the others carry a value SQLAlchemy bound
    default: Any
    process: Callable[[Any], Any] | None


@dataclass(frozen=True)
class PreparedWrite:
    """A statement compiled once for one dialect: its SQL, and how to turn named values into its
    positional arguments (defaults for values SQLAlchemy bound itself, then each type's processor)."""

    statement: UpdateBase
    sql: str
    binds: tuple[_Bind, ...]
    columns: tuple[str, ...]

    @classmethod
    def compile(cls, statement: UpdateBase, dialect: Dialect) -> PreparedWrite:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler) and compiled.positiontup is not None
        binds = tuple(
            _Bind(
                name,
                compiled.binds[name].required,
                compiled.binds[name].value,
                compiled.binds[name].type.bind_processor(dialect),
            )
            for name in compiled.positiontup
        )
        columns = tuple(column.key for column in compiled.returning or ())
        return cls(statement=statement, sql=str(compiled), binds=binds, columns=columns)

    def arguments(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        arguments = []
        for bind in self.binds:
            if bind.required and bind.name not in values:
                raise KeyError(f"a value is required for bind parameter {bind.name!r}")
            value = values.get(bind.name, bind.default)
            arguments.append(bind.process(value) if bind.process is not None else value)
        return tuple(arguments)


Write = tuple[PreparedWrite, Mapping[str, Any]]


class DirectWriter(Protocol):
    transactions: int  # committed so far: what group commit is judged by

    async def write(self, batch: Sequence[Write]) -> list[Row]:
        """Run every statement of ``batch`` in one transaction; their RETURNING rows, in order.
        If one fails, nothing of the batch is written and its error is raised."""
        ...

    def write_now(self, batch: Sequence[Write]) -> list[Row] | None:
        """:meth:`write` without yielding to the event loop, when that can be done without waiting
        (None: it cannot, call :meth:`write`)."""
        ...

    async def write_many(self, prepared: PreparedWrite, rows: Sequence[Mapping[str, Any]]) -> None:
        """One statement (no RETURNING) for each of ``rows``: one transaction (on SQLite, one per
        chunk of rows, so the loop is never held long)."""
        ...

    async def close(self) -> None: ...


Work = list[tuple[str, tuple[Any, ...], tuple[str, ...]]]  # (sql, arguments, RETURNING columns)
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6


class _LockTaken(Exception):
    """Another connection holds SQLite's write lock (or the WAL is being reset): try again shortly."""


Job = Callable[[sqlite3.Connection], list[Row]]


class SqliteDirectWriter:
    """Writes run on the event loop itself, on a connection of their own that can never stall it.

    Two costs of a helper thread make the loop the better place on one busy core. Handing work to a
    thread and back wakes two CPUs (~100-700 µs here, against ~50 µs for an upsert and its COMMIT).
    And while the loop runs Python flat out, the thread waits for the GIL at every row it binds
    (up to the 5 ms switch interval each): a flush of 250 sightings took 1.2 s there, holding the
    write lock all along. So the loop runs batches of at most ``inline_max`` statements (and
    ``write_many`` in chunks of ``many_chunk``, yielding between them). Its connection never waits
    for a lock (``busy_timeout=0``: while the lock is taken the work is tried again every
    millisecond, between other work, and after ``lock_patience`` seconds it goes to the thread, whose
    connection waits up to ``lock_timeout`` seconds) and never checkpoints the WAL (``wal_autocheckpoint=0``): after
    every ``checkpoint_every`` commits, a thread of its own checkpoints (one C call, no GIL needed,
    and the fsyncs) while the loop goes on, so the WAL stays bounded and no one waits for it. With
    ``synchronous=NORMAL`` a COMMIT in WAL mode writes to the OS cache and does not fsync.
    """

    def __init__(
        self,
        path: str,
        configure: Callable[[sqlite3.Connection], None],
        *,
        inline_max: int = 50,
        many_chunk: int = 200,
        checkpoint_every: int = 256,
        lock_patience: float = 0.5,
        lock_timeout: float = 30.0,
    ) -> None:
        self.path = path
        self.configure = configure
        self.inline_max = inline_max
        self.many_chunk = many_chunk
        self.checkpoint_every = checkpoint_every
        self.lock_patience = lock_patience
        self.lock_timeout = lock_timeout
        self.transactions = 0
        self.inline_transactions = 0
        self.checkpoints = 0
        self._since_checkpoint = 0
        self._checkpointing: Future[None] | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-direct-writes")
        self._checkpointer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-checkpoints")
        self._checkpoint_connection: sqlite3.Connection | None = None
        self._threaded: sqlite3.Connection | None = None
        self._inline: sqlite3.Connection | None = None
        self._inline_owner: int | None = None
        self._closed = False

    async def write(self, batch: Sequence[Write]) -> list[Row]:
        self._check_open()
        work = _work(batch)
        return await self._once_free(partial(_run, work=work), fits=len(work) <= self.inline_max)

    def write_now(self, batch: Sequence[Write]) -> list[Row] | None:
        self._check_open()
        work = _work(batch)
        return self._try_inline(partial(_run, work=work)) if len(work) <= self.inline_max else None

    async def write_many(self, prepared: PreparedWrite, rows: Sequence[Mapping[str, Any]]) -> None:
        self._check_open()
        for start in range(0, len(rows), self.many_chunk):
            if start:
                await asyncio.sleep(0)  # updates waiting meanwhile go first
            arguments = [prepared.arguments(values) for values in rows[start : start + self.many_chunk]]
            await self._once_free(partial(_run_many, sql=prepared.sql, arguments=arguments), fits=True)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the database's direct writer is closed")

    async def _once_free(self, job: Job, *, fits: bool) -> list[Row]:
        """On the loop as soon as the lock is free (tried every millisecond for ``lock_patience``
        seconds: the thread's busy handler sleeps in growing steps, up to 100 ms, and wakes late),
        else on the thread."""
        waited_until = time.monotonic() + self.lock_patience
        while fits and self._on_inline_thread():
            rows = self._try_inline(job)
            if rows is not None:
                return rows
            if time.monotonic() >= waited_until:
                break
            await asyncio.sleep(0.001)
        rows = await asyncio.get_running_loop().run_in_executor(self._thread, self._run_threaded, job)
        self.transactions += 1
        return rows

    def _try_inline(self, job: Job) -> list[Row] | None:
        """The job done on the loop, or None: another thread's loop, or the lock is taken."""
        if not self._on_inline_thread():
            return None
        try:
            rows = job(self._inline_connection())
        except _LockTaken:
            return None
        self.transactions += 1
        self.inline_transactions += 1
        self._since_checkpoint += 1
        if self._since_checkpoint >= self.checkpoint_every:
            self._checkpoint_behind()
        return rows

    def _checkpoint_behind(self) -> None:
        if self._checkpointing is not None and not self._checkpointing.done():
            return  # the last one is still at it: the next commit asks again
        self._since_checkpoint = 0
        self._checkpointing = self._checkpointer.submit(self._checkpoint)
        self._checkpointing.add_done_callback(_log_failure)

    def _checkpoint(self) -> None:
        # PASSIVE: copies what it can without waiting for, or blocking, readers and writers. A thread
        # and connection of its own: a write sent to the thread never queues behind its fsyncs.
        if self._checkpoint_connection is None:
            self._checkpoint_connection = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self.configure(self._checkpoint_connection)
        self._checkpoint_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        self.checkpoints += 1

    def _on_inline_thread(self) -> bool:
        # sqlite3 connections belong to the thread that made them: the first loop to write owns it.
        return self._inline_owner in (None, threading.get_ident())

    def _inline_connection(self) -> sqlite3.Connection:
        if self._inline is None:
            connection = sqlite3.connect(self.path, isolation_level=None, timeout=0)
            self.configure(connection)
            connection.execute("PRAGMA busy_timeout=0")
            connection.execute("PRAGMA wal_autocheckpoint=0")
            self._inline, self._inline_owner = connection, threading.get_ident()
        return self._inline

    def _run_threaded(self, job: Job) -> list[Row]:
        try:
            return job(self._threaded_connection())
        except _LockTaken as taken:  # held past ``lock_timeout``: SQLite's own error, as it is
            raise taken.__cause__ or taken from None

    def _threaded_connection(self) -> sqlite3.Connection:
        if self._threaded is None:  # made on the writer's thread, the only one that uses it
            self._threaded = sqlite3.connect(self.path, isolation_level=None)
            self.configure(self._threaded)
            self._threaded.execute(f"PRAGMA busy_timeout={int(self.lock_timeout * 1000)}")
        return self._threaded

    async def close(self) -> None:
        self._closed = True
        if self._inline is not None and self._on_inline_thread():
            self._inline.close()
        self._inline = None
        loop = asyncio.get_running_loop()
        if self._threaded is not None:
            await loop.run_in_executor(self._thread, self._threaded.close)
            self._threaded = None
        self._thread.shutdown(wait=True)
        if self._checkpointing is not None:
            with contextlib.suppress(Exception):  # already logged
                await asyncio.wrap_future(self._checkpointing)
        if self._checkpoint_connection is not None:
            await loop.run_in_executor(self._checkpointer, self._checkpoint_connection.close)
            self._checkpoint_connection = None
        self._checkpointer.shutdown(wait=True)


def _log_failure(done: Future[None]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.error("WAL checkpoint failed (the next one retries)", exc_info=done.exception())


def _work(batch: Sequence[Write]) -> Work:
    return [(prepared.sql, prepared.arguments(values), prepared.columns) for prepared, values in batch]


def _run(connection: sqlite3.Connection, work: Work) -> list[Row]:
    _begin(connection)
    try:
        rows = [_row(columns, connection.execute(sql, args).fetchone()) for sql, args, columns in work]
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return rows


def _run_many(connection: sqlite3.Connection, sql: str, arguments: list[tuple[Any, ...]]) -> list[Row]:
    _begin(connection)
    try:
        connection.executemany(sql, arguments)
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return []


def _begin(connection: sqlite3.Connection) -> None:
    """IMMEDIATE takes the write lock first, so a transaction never fails halfway for want of
    upgrading a read lock another writer got to first."""
    try:
        connection.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED):
            raise _LockTaken from exc
        raise


def _row(columns: tuple[str, ...], values: tuple[Any, ...] | None) -> Row:
    if values is None:
        raise LookupError("a direct write returned no row")
    return dict(zip(columns, values, strict=True))


class AsyncpgDirectWriter:
    """The statements on the asyncpg connection itself, in one transaction, with a pooled connection."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.transactions = 0

    async def write(self, batch: Sequence[Write]) -> list[Row]:
        # One statement is atomic on its own: BEGIN and COMMIT would be two more round trips.
        async with self._driver(transaction=len(batch) > 1) as driver:
            return [
                _record(await driver.fetchrow(prepared.sql, *prepared.arguments(values)))
                for prepared, values in batch
            ]

    def write_now(self, batch: Sequence[Write]) -> list[Row] | None:
        return None  # every statement is a round trip to the server

    async def write_many(self, prepared: PreparedWrite, rows: Sequence[Mapping[str, Any]]) -> None:
        async with self._driver(transaction=True) as driver:
            await driver.executemany(prepared.sql, [prepared.arguments(values) for values in rows])

    @contextlib.asynccontextmanager
    async def _driver(self, *, transaction: bool) -> AsyncIterator[Any]:
        """The asyncpg connection of a pooled connection, inside one transaction if asked (counted
        once done)."""
        async with self.engine.connect() as pooled:
            driver: Any = (await pooled.get_raw_connection()).driver_connection
            async with driver.transaction() if transaction else contextlib.nullcontext():
                yield driver
        self.transactions += 1

    async def close(self) -> None:
        return None


def _record(record: Any) -> Row:
    if record is None:
        raise LookupError("a direct write returned no row")
    return dict(record)


class CoreDirectWriter:
    """The portable way, through SQLAlchemy Core: for databases no direct path is written for."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.transactions = 0

    async def write(self, batch: Sequence[Write]) -> list[Row]:
        async with self.engine.begin() as connection:
            rows: list[Row] = [
                dict((await connection.execute(prepared.statement, dict(values))).one()._mapping)
                for prepared, values in batch
            ]
        self.transactions += 1
        return rows

    def write_now(self, batch: Sequence[Write]) -> list[Row] | None:
        return None  # the engine's driver is asynchronous

    async def write_many(self, prepared: PreparedWrite, rows: Sequence[Mapping[str, Any]]) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(prepared.statement, [dict(values) for values in rows])
        self.transactions += 1

    async def close(self) -> None:
        return None


def direct_writer_for(
    engine: AsyncEngine, configure_sqlite: Callable[[sqlite3.Connection], None]
) -> DirectWriter:
    url = engine.url
    if url.get_backend_name() == "sqlite":
        path = url.database or ""
        in_memory = path in ("", ":memory:") or url.query.get("mode") == "memory"
        if not in_memory:
            return SqliteDirectWriter(path, configure_sqlite)
    if url.get_backend_name() == "postgresql" and url.get_driver_name() == "asyncpg":
        return AsyncpgDirectWriter(engine)
    return CoreDirectWriter(engine)
