"""Database engine and sessions. One async engine per process, built from settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.direct_writes import DirectWriter, direct_writer_for
from backend.settings import Settings


def utcnow() -> datetime:
    """The current time, aware and in UTC: every stored timestamp is UTC (SQLModel refuses naive ones)."""
    return datetime.now(UTC)


class Database:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = settings.database_url
        self.engine: AsyncEngine = _make_engine(settings)
        self.sessionmaker = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        self._direct: DirectWriter | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def dialect(self) -> str:
        """ "sqlite" or "postgresql": for the few statements written per dialect (upserts)."""
        return self.engine.dialect.name

    def session(self) -> AsyncSession:
        return self.sessionmaker()

    @property
    def direct(self) -> DirectWriter:
        """Prebuilt statements run on the driver (see ``backend.direct_writes``): for hot writes only."""
        if self._direct is None:
            self._direct = direct_writer_for(self.engine, lambda conn: _sqlite_pragmas(conn, None))
        return self._direct

    async def ping(self) -> bool:
        from sqlalchemy import text

        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def dispose(self) -> None:
        if self._direct is not None:
            await self._direct.close()
            self._direct = None
        await self.engine.dispose()


def _make_engine(settings: Settings) -> AsyncEngine:
    url = settings.database_url
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split(":///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers (web chat, API) proceed while the delivery worker writes.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


async def session_scope(db: Database) -> AsyncIterator[AsyncSession]:
    async with db.session() as session:
        yield session
