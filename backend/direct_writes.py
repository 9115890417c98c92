"""Direct writes: prebuilt single-row statements run on the database driver, a batch per transaction.

For the one write on the hottest path (a user's first ``/start``), SQLAlchemy's async session costs far
more than the statement: about 1 ms of greenlet bridging, pooling, result building and, on SQLite,
six aiosqlite thread hand-offs, against about 60 µs for the INSERT and its COMMIT. A direct writer
keeps the statement SQLAlchemy built (compiled once per dialect, its bind processors applied, so a
row written here is the row the ORM would have written) and only skips the machinery around it:

- SQLite file: one connection of its own, on one thread of its own; a batch is one thread hand-off
  (``BEGIN IMMEDIATE``, the statements, ``COMMIT``), with the engine's pragmas.
- PostgreSQL (asyncpg): a connection from the engine's pool, the statements on the asyncpg
  connection inside one transaction.
- Anything else (an in-memory SQLite database, which a second connection would not see): the
  engine's own connection, through SQLAlchemy Core.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase

Row = Mapping[str, Any]


@dataclass(frozen=True)
class _Bind:
    name: str
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
            _Bind(name, compiled.binds[name].value, compiled.binds[name].type.bind_processor(dialect))
            for name in compiled.positiontup
        )
        columns = tuple(column.key for column in compiled.returning or ())
        return cls(statement=statement, sql=str(compiled), binds=binds, columns=columns)

    def arguments(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        arguments = []
        for bind in self.binds:
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

    async def close(self) -> None: ...


class SqliteDirectWriter:
    """One connection on one thread: a batch costs one hand-off, not three per statement."""

    def __init__(self, path: str, configure: Callable[[sqlite3.Connection], None]) -> None:
        self.path = path
        self.configure = configure
        self.transactions = 0
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-direct-writes")
        self._connection: sqlite3.Connection | None = None

    async def write(self, batch: Sequence[Write]) -> list[Row]:
        work = [(prepared.sql, prepared.arguments(values), prepared.columns) for prepared, values in batch]
        rows = await asyncio.get_running_loop().run_in_executor(self._thread, self._run, work)
        self.transactions += 1
        return rows

    def _run(self, work: list[tuple[str, tuple[Any, ...], tuple[str, ...]]]) -> list[Row]:
        connection = self._connect()
        # IMMEDIATE takes the write lock first (waiting in the busy handler), so a transaction never
        # fails halfway for want of upgrading a read lock another writer got to first.
        connection.execute("BEGIN IMMEDIATE")
        try:
            rows = [_row(columns, connection.execute(sql, args).fetchone()) for sql, args, columns in work]
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return rows

    def _connect(self) -> sqlite3.Connection:
        # Made on the writer's own thread, the only one that ever uses it (sqlite3's thread check holds).
        if self._connection is None:
            connection = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self.configure(connection)
            self._connection = connection
        return self._connection

    async def close(self) -> None:
        if self._connection is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._connection.close)
            self._connection = None
        self._thread.shutdown(wait=True)


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
        async with self.engine.connect() as pooled:
            driver: Any = (await pooled.get_raw_connection()).driver_connection
            async with driver.transaction():
                rows = [
                    _record(await driver.fetchrow(prepared.sql, *prepared.arguments(values)))
                    for prepared, values in batch
                ]
        self.transactions += 1
        return rows

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
