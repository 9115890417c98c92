"""Direct writes: the row a prebuilt statement writes on the driver is the row the ORM would have
written, a batch is all or nothing, and the writer follows the database it serves."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from backend.db import Database, utcnow
from backend.direct_writes import (
    AsyncpgDirectWriter,
    CoreDirectWriter,
    PreparedWrite,
    SqliteDirectWriter,
)
from backend.people import service
from backend.people.models import ChatIdentity
from tests.conftest import make_settings


def _values(external_id: str | None, **changes: Any) -> dict[str, Any]:
    return {
        "p_channel": "webchat",
        "p_external_id": external_id,
        "p_address": f"addr-{external_id}",
        "p_first_name": "王大明",
        "p_locale": "zh-CN",
        "p_now": utcnow(),
        **changes,
    }


def _upsert(db: Database) -> PreparedWrite:
    return PreparedWrite.compile(service._upsert_statement(db.dialect, follow_locale=True), db.engine.dialect)


async def _stored(db: Database, external_id: str) -> ChatIdentity | None:
    async with db.session() as session:
        query = select(ChatIdentity).where(ChatIdentity.external_id == external_id)
        return (await session.exec(query)).first()


async def test_a_direct_write_reads_back_through_the_orm_as_written(db: Database) -> None:
    assert isinstance(db.direct, SqliteDirectWriter)
    seen = utcnow() - timedelta(minutes=3)
    [row] = await db.direct.write([(_upsert(db), _values("d1", p_now=seen))])
    stored = await _stored(db, "d1")
    assert stored is not None and stored.id == row["id"]
    # Times go through the column type's own processing: aware UTC in, the same instant out.
    assert stored.created_at == seen and stored.last_seen_at == seen
    assert stored.locale == "zh-CN" and stored.locale_chosen is False and stored.first_name == "王大明"
    assert row["external_id"] == "d1" and row["stopped_at"] is None


async def test_a_direct_upsert_updates_the_row_the_orm_changed(db: Database) -> None:
    [first] = await db.direct.write([(_upsert(db), _values("d2"))])
    async with db.session() as session:
        identity = await session.get(ChatIdentity, first["id"])
        assert identity is not None
        identity.stopped_at, identity.locale, identity.locale_chosen = utcnow(), "en", True
        await session.commit()
    [again] = await db.direct.write([(_upsert(db), _values("d2", p_first_name=None))])
    assert again["id"] == first["id"]
    assert again["stopped_at"] is None  # back on /start
    assert again["locale"] == "en"  # chosen in the bot: the app's language no longer overrides it
    assert again["first_name"] == "王大明"  # a start without a name keeps the one known


async def test_a_failing_statement_leaves_nothing_of_its_batch(db: Database) -> None:
    before = db.direct.transactions
    with pytest.raises(Exception, match="NOT NULL"):
        await db.direct.write([(_upsert(db), _values("d3")), (_upsert(db), _values(None))])
    assert await _stored(db, "d3") is None
    assert db.direct.transactions == before
    [row] = await db.direct.write([(_upsert(db), _values("d3"))])  # the connection is usable again
    assert (await _stored(db, "d3")) is not None and row["external_id"] == "d3"


async def test_the_writer_follows_the_database(tmp_path: Path) -> None:
    memory = Database(make_settings(tmp_path, database_url="sqlite+aiosqlite:///:memory:"))
    postgres = Database(make_settings(tmp_path, database_url="postgresql+asyncpg://u@127.0.0.1:1/x"))
    try:
        # A second connection would not see an in-memory database: it goes through the engine.
        assert isinstance(memory.direct, CoreDirectWriter)
        assert isinstance(postgres.direct, AsyncpgDirectWriter)
    finally:
        await memory.dispose()
        await postgres.dispose()


async def test_disposing_the_database_closes_the_writer(settings: Any) -> None:
    database = Database(settings)
    writer = database.direct
    await writer.write([(_upsert(database), _values("d4"))])
    assert isinstance(writer, SqliteDirectWriter)
    await database.dispose()
    with pytest.raises(RuntimeError):  # its thread is gone: nothing can write behind a closed database
        await writer.write([(_upsert(database), _values("d5"))])


async def test_the_portable_writer_writes_the_same_row(db: Database) -> None:
    writer = CoreDirectWriter(db.engine)
    seen = utcnow() - timedelta(minutes=1)
    [row] = await writer.write([(_upsert(db), _values("d6", p_now=seen))])
    stored = await _stored(db, "d6")
    assert stored is not None and stored.id == row["id"] and stored.last_seen_at == seen
    with pytest.raises(Exception, match="NOT NULL"):
        await writer.write([(_upsert(db), _values("d7")), (_upsert(db), _values(None))])
    assert await _stored(db, "d7") is None and writer.transactions == 1


def _sqlite_writer(db: Database, **options: Any) -> SqliteDirectWriter:
    writer = db.direct
    assert isinstance(writer, SqliteDirectWriter)
    for name, value in options.items():
        setattr(writer, name, value)
    return writer


async def test_small_batches_run_on_the_loop_and_the_thread_checkpoints_behind(db: Database) -> None:
    writer = _sqlite_writer(db, checkpoint_every=3)
    for n in range(7):
        await writer.write([(_upsert(db), _values(f"n{n}"))])
    assert (writer.transactions, writer.inline_transactions) == (7, 7)
    await asyncio.sleep(0.2)  # the checkpoints run on the thread; no write waited for them
    assert writer.checkpoints >= 1
    big = [(_upsert(db), _values(f"big{n}")) for n in range(writer.inline_max + 1)]
    rows = await writer.write(big)
    assert len(rows) == len(big) and writer.inline_transactions == 7  # too big to hold the loop for


def _hold_write_lock(settings: Any) -> sqlite3.Connection:
    """Another writer (a long request, the delivery worker) holding SQLite's write lock."""
    holder = sqlite3.connect(settings.database_url.split(":///", 1)[1], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


async def test_a_taken_write_lock_never_stalls_the_loop(db: Database, settings: Any) -> None:
    writer = _sqlite_writer(db)
    await writer.write([(_upsert(db), _values("warm"))])  # the loop's connection exists
    holder = _hold_write_lock(settings)
    write = asyncio.create_task(writer.write([(_upsert(db), _values("waited"))]))
    started = time.perf_counter()
    await asyncio.sleep(0.2)
    ticked = time.perf_counter() - started
    assert not write.done() and ticked < 1.0  # the write waits, the loop runs on
    holder.execute("COMMIT")
    holder.close()
    [row] = await asyncio.wait_for(write, timeout=10)
    assert row["external_id"] == "waited" and writer.inline_transactions == 2  # done once free


async def test_a_write_kept_waiting_too_long_goes_to_the_thread(db: Database, settings: Any) -> None:
    writer = _sqlite_writer(db, lock_patience=0.05)
    await writer.write([(_upsert(db), _values("warm"))])
    holder = _hold_write_lock(settings)
    write = asyncio.create_task(writer.write([(_upsert(db), _values("patient"))]))
    await asyncio.sleep(0.2)
    assert not write.done()
    holder.execute("COMMIT")
    holder.close()
    [row] = await asyncio.wait_for(write, timeout=10)
    assert row["external_id"] == "patient" and writer.inline_transactions == 1  # the thread wrote it


def _size(path: str) -> int:
    return os.path.getsize(path)


async def test_the_loop_never_checkpoints_but_the_wal_stays_bounded(db: Database, settings: Any) -> None:
    writer = _sqlite_writer(db, checkpoint_every=50)
    wal = settings.database_url.split(":///", 1)[1] + "-wal"
    for n in range(600):
        await writer.write([(_upsert(db), _values(f"wal{n}"))])
        if n % 50 == 49:
            await asyncio.sleep(0.02)  # a moment for the checkpoint under way, as real traffic leaves
    assert writer.inline_transactions == 600 and writer.checkpoints >= 5
    # Unchecked, 600 commits of a few 4 KiB pages each would make a WAL of ~10 MB.
    assert _size(wal) < 3 * 1024 * 1024


def test_a_value_left_out_is_refused_not_written_as_null(db: Database) -> None:
    values = _values("d8")
    del values["p_address"]
    with pytest.raises(KeyError, match="p_address"):
        _upsert(db).arguments(values)


async def test_a_lock_held_past_the_timeout_fails_the_write_with_sqlites_error(
    db: Database, settings: Any
) -> None:
    writer = _sqlite_writer(db, lock_patience=0.02, lock_timeout=0.1)
    holder = _hold_write_lock(settings)
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await writer.write([(_upsert(db), _values("never"))])
    finally:
        holder.execute("COMMIT")
        holder.close()
    assert await _stored(db, "never") is None
