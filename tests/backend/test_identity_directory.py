"""The identity directory: a returning /start answered from the cache, every change still written at once,
sightings written behind, concurrent first contacts committed together."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import select

from backend.db import Database, utcnow
from backend.people import service
from backend.people.directory import (
    IdentityDirectory,
    IdentityRecord,
    MemoryIdentityCache,
    PresenceBuffer,
)
from backend.people.models import ChatIdentity


def _open_body(external_id: str, **changes: Any) -> dict[str, Any]:
    body = {
        "channel": "webchat",
        "external_id": external_id,
        "address": external_id,
        "first_name": "王大明",
        "language_code": "zh-CN",
    }
    return {**body, **changes}


async def _stored(db: Database, external_id: str) -> ChatIdentity:
    async with db.session() as session:
        query = select(ChatIdentity).where(ChatIdentity.external_id == external_id)
        return (await session.exec(query)).one()


async def _open(api: httpx.AsyncClient, headers: dict[str, str], external_id: str, **changes: Any) -> Any:
    response = await api.post("/api/bot/identities", json=_open_body(external_id, **changes), headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_returning_start_is_answered_from_the_directory_and_its_time_written_behind(
    app, api: httpx.AsyncClient, service_headers: dict[str, str], db: Database
) -> None:
    first = await _open(api, service_headers, "u1")
    seen_first = (await _stored(db, "u1")).last_seen_at
    again = await _open(api, service_headers, "u1")
    assert again == first
    presence = app.state.identities.presence
    assert presence.pending == 1
    assert (await _stored(db, "u1")).last_seen_at == seen_first  # not yet: written behind
    assert await presence.flush() == 1
    assert (await _stored(db, "u1")).last_seen_at > seen_first


async def test_start_with_a_new_name_or_address_is_written_at_once(
    api: httpx.AsyncClient, service_headers: dict[str, str], db: Database
) -> None:
    await _open(api, service_headers, "u2")
    renamed = await _open(api, service_headers, "u2", first_name="王小明")
    assert renamed["first_name"] == "王小明"
    assert (await _stored(db, "u2")).first_name == "王小明"
    # No name this time (a browser that does not say): the known one stays.
    kept = await _open(api, service_headers, "u2", address="chat-9", first_name=None)
    assert kept["first_name"] == "王小明"
    stored = await _stored(db, "u2")
    assert stored.address == "chat-9" and stored.first_name == "王小明"


async def test_app_language_is_followed_until_the_user_chooses_one(
    api: httpx.AsyncClient, service_headers: dict[str, str]
) -> None:
    assert (await _open(api, service_headers, "u3", language_code="en-US"))["locale"] == "en"
    assert (await _open(api, service_headers, "u3", language_code="zh-Hans"))["locale"] == "zh-CN"
    identity_headers = {**service_headers, "X-Tianbao-Identity": "webchat:u3"}
    chosen = await api.post("/api/bot/me/locale", json={"locale": "en"}, headers=identity_headers)
    assert chosen.json()["locale"] == "en"
    # The choice was dropped from the directory, so the next /start sees it, and it beats the app's.
    assert (await _open(api, service_headers, "u3", language_code="zh-CN"))["locale"] == "en"
    assert (await api.get("/api/bot/me", headers=identity_headers)).json()["locale"] == "en"


async def test_bound_phone_is_seen_by_the_next_start(
    api: httpx.AsyncClient, service_headers: dict[str, str]
) -> None:
    assert (await _open(api, service_headers, "u4", channel="telegram"))["phone_verified"] is False
    identity_headers = {**service_headers, "X-Tianbao-Identity": "telegram:u4"}
    bound = await api.post(
        "/api/bot/me/phone", json={"phone_number": "13812345678"}, headers=identity_headers
    )
    assert bound.status_code == 200, bound.text
    after = await _open(api, service_headers, "u4", channel="telegram")
    assert after["phone_verified"] is True and after["phone_masked"] == "138****5678"
    assert after["person_id"] == bound.json()["person_id"] is not None


async def test_a_web_chat_binds_no_number_without_its_code(
    api: httpx.AsyncClient, service_headers: dict[str, str]
) -> None:
    """A browser can send any number: web chat binds one only by the SMS code
    (tests/bot/test_sms_verification.py), whoever holds it, and the refusal names no holder."""
    await _open(api, service_headers, "u5")
    identity_headers = {**service_headers, "X-Tianbao-Identity": "webchat:u5"}
    refused = await api.post(
        "/api/bot/me/phone", json={"phone_number": "13812345670"}, headers=identity_headers
    )
    assert refused.status_code == 422 and refused.json()["detail"]["code"] == "phone_needs_code", refused.text
    after = await _open(api, service_headers, "u5")
    assert after["person_id"] is None and after["phone_masked"] is None


async def test_stopped_user_cached_as_active_comes_back_on_start_at_once(
    app, api: httpx.AsyncClient, service_headers: dict[str, str], db: Database
) -> None:
    await _open(api, service_headers, "u5")
    async with db.session() as session:
        await service.mark_stopped(
            session=session, directory=app.state.identities, channel="webchat", address="u5"
        )
        await session.commit()
    assert (await _stored(db, "u5")).stopped_at is not None
    await _open(api, service_headers, "u5")
    assert (await _stored(db, "u5")).stopped_at is None  # in the request, not at the next flush


async def test_a_sighting_clears_an_earlier_stop_but_not_a_later_one(
    directory: IdentityDirectory, db: Database
) -> None:
    now = utcnow()
    async with db.session() as session:
        for name, stopped in (("early", now - timedelta(minutes=1)), ("late", now + timedelta(minutes=1))):
            session.add(
                ChatIdentity(
                    channel="webchat",
                    external_id=name,
                    address=name,
                    stopped_at=stopped,
                    last_seen_at=now - timedelta(hours=1),
                )
            )
        await session.commit()
    for name in ("early", "late"):
        await directory.presence.note((await _stored(db, name)).id or 0, now)
    assert await directory.presence.flush() == 2
    assert (await _stored(db, "early")).stopped_at is None
    late = await _stored(db, "late")
    assert late.stopped_at is not None and late.last_seen_at == now


async def test_with_its_task_running_a_full_presence_buffer_never_makes_a_request_wait(
    db: Database,
) -> None:
    presence = PresenceBuffer(db, interval=60, max_pending=20)
    presence.start()
    try:
        now = utcnow()
        for identity_id in range(1, 21):
            await presence.note(identity_id, now)
        assert presence.pending == 20  # the twentieth sighting did not write in the request
        for _ in range(100):  # the task starts early, long before its minute is up
            await asyncio.sleep(0.01)
            if presence.pending == 0:
                break
        assert presence.pending == 0
    finally:
        await presence.stop()


async def test_presence_keeps_a_failed_batch_for_the_next_round(
    directory: IdentityDirectory, settings: Any
) -> None:
    await directory.presence.note(1, utcnow())
    database_file = settings.database_url.split(":///", 1)[1]
    _rename_table(database_file, "chat_identity", "chat_identity_away")  # the write must fail
    with pytest.raises(sqlite3.OperationalError):
        await directory.presence.flush()
    assert directory.presence.pending == 1
    _rename_table(database_file, "chat_identity_away", "chat_identity")
    assert await directory.presence.flush() == 1


def _rename_table(database_file: str, name: str, to: str) -> None:
    with sqlite3.connect(database_file) as connection:
        connection.execute(f"ALTER TABLE {name} RENAME TO {to}")


async def _first_contact(directory: IdentityDirectory, n: int) -> IdentityRecord:
    return await service.open_identity(
        directory=directory,
        channel="webchat",
        external_id=f"crowd-{n}",
        address=f"crowd-{n}",
        first_name=None,
        language_code=None,
        default_locale="zh-CN",
    )


async def test_first_contacts_that_must_wait_share_one_commit(
    directory: IdentityDirectory, db: Database, settings: Any
) -> None:
    """While another connection holds SQLite's write lock, first contacts queue up; once it is free,
    the one that waited goes alone and all that queued meanwhile share the next commit."""
    holder = sqlite3.connect(settings.database_url.split(":///", 1)[1], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    committed_before = db.direct.transactions
    crowd = asyncio.gather(*(_first_contact(directory, n) for n in range(40)))
    await asyncio.sleep(0.1)
    holder.execute("COMMIT")
    holder.close()
    records = await asyncio.wait_for(crowd, timeout=10)
    assert len({r.id for r in records}) == 40
    assert [r.external_id for r in records] == [f"crowd-{n}" for n in range(40)]
    assert db.direct.transactions - committed_before <= 3
    for record in records[::13]:
        assert (await _stored(db, record.external_id)).id == record.id


async def test_a_first_contact_on_an_idle_writer_is_written_in_the_callers_step(
    directory: IdentityDirectory, db: Database
) -> None:
    """No queue, no task, no trip through the event loop: a callback scheduled before the write has
    not run when the write is done."""
    ran: list[bool] = []
    asyncio.get_running_loop().call_soon(ran.append, True)
    record = await _first_contact(directory, 99)
    assert ran == [] and (await _stored(db, "crowd-99")).id == record.id


async def test_one_failing_write_does_not_fail_the_others_in_its_group(
    directory: IdentityDirectory, db: Database
) -> None:
    good = service._upsert_statement(db.dialect, follow_locale=False)
    now = utcnow()

    def params(name: str | None) -> dict[str, Any]:
        return {
            "p_channel": "webchat",
            "p_external_id": name,
            "p_address": "a",
            "p_first_name": None,
            "p_locale": "zh-CN",
            "p_now": now,
        }

    results = await asyncio.gather(
        directory.writer.write(good, params("ok-1")),
        directory.writer.write(good, params(None)),  # external_id is NOT NULL
        directory.writer.write(good, params("ok-2")),
        return_exceptions=True,
    )
    assert results[0]["external_id"] == "ok-1" and results[2]["external_id"] == "ok-2"  # type: ignore[index]
    assert isinstance(results[1], Exception)


async def test_memory_cache_expires_and_stays_bounded() -> None:
    record = IdentityRecord(
        id=1,
        channel="webchat",
        external_id="a",
        address="a",
        first_name=None,
        locale="zh-CN",
        locale_chosen=False,
        phone_masked=None,
        phone_verified=False,
        person_id=None,
        stopped=False,
    )
    short = MemoryIdentityCache(ttl_seconds=0.01)
    await short.put(record)
    assert await short.get(record.key) == record
    await asyncio.sleep(0.02)
    assert await short.get(record.key) is None
    small = MemoryIdentityCache(ttl_seconds=60, max_entries=2)
    for n in range(3):
        await small.put(IdentityRecord(**{**record.__dict__, "external_id": str(n)}))
    assert [await small.get(("webchat", str(n))) is not None for n in range(3)] == [False, True, True]
