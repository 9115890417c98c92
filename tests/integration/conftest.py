"""Real PostgreSQL and Redis. Skipped with a visible reason when unreachable; required (failing) in CI."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.engine import make_url

from backend.bootstrap import bootstrap
from backend.db import Database
from backend.settings import Settings
from tests.conftest import POSTGRES_URL, REDIS_URL, integration_unavailable, make_settings

pytestmark = pytest.mark.integration


def _admin_dsn(url: str) -> tuple[str, str]:
    parsed = make_url(url)
    base = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    return base, parsed.database or "test"


async def _postgres_reachable() -> str | None:
    dsn, _ = _admin_dsn(POSTGRES_URL)
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except Exception as exc:
        return f"PostgreSQL unreachable at {POSTGRES_URL}: {exc}"
    await conn.close()
    return None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database for this run: migrated by Alembic and loaded with the regions, like production."""
    problem = asyncio.run(_postgres_reachable())
    if problem:
        integration_unavailable(problem)
    admin_dsn, _ = _admin_dsn(POSTGRES_URL)
    name = f"tianbao_it_{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        conn = await asyncpg.connect(admin_dsn)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(admin_dsn)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    asyncio.run(create())
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        asyncio.run(drop())


@pytest.fixture(scope="session")
def migrated_postgres(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    settings = make_settings(tmp_path_factory.mktemp("pg"), database_url=postgres_url)

    async def run() -> None:
        db = Database(settings)
        await bootstrap(db, settings)
        await db.dispose()

    asyncio.run(run())
    return postgres_url


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        integration_unavailable(f"Redis unreachable at {REDIS_URL}: {exc}")
    await client.flushdb()
    yield REDIS_URL
    await client.flushdb()
    await client.aclose()


@pytest.fixture
def pg_settings(migrated_postgres: str, redis_url: str, tmp_path: Path) -> Settings:
    return make_settings(tmp_path, database_url=migrated_postgres, redis_url=redis_url)


@pytest.fixture
async def pg_db(pg_settings: Settings) -> AsyncIterator[Database]:
    db = Database(pg_settings)
    async with db.engine.begin() as conn:
        await conn.execute(text("TRUNCATE outbox, chat_identity, person RESTART IDENTITY CASCADE"))
    yield db
    await db.dispose()
