"""Web chat cannot be used to fill the disk (issue 11): a file is kept only where a question asks for
one, and only a whole, decodable photo; messages, uploads, bytes and new chats are limited per chat
and per client address (shared through Redis); idle anonymous chats expire with all they hold."""

from __future__ import annotations

import io
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.redis import RedisStorage
from apscheduler.triggers.interval import IntervalTrigger
from fastapi import FastAPI
from PIL import Image
from redis.asyncio import Redis
from sqlalchemy import event, func, select, update

from backend.alerts.models import StaffAlert
from backend.chatstore.jobs import expire_idle_webchats
from backend.chatstore.keys import (
    WEBCHAT_BOT_ID,
    activity_key,
    files_folder,
    input_keys,
    numeric_id,
    redis_state_keys,
    sql_inputs_key,
    sql_state_key,
    transcript_keys,
)
from backend.chatstore.models import ConversationState, WebChatFileRecord, WebChatRecord, WebChatThread
from backend.db import Database, utcnow
from backend.people.models import ChatIdentity, Person
from backend.settings import Settings
from backend.throttle import RedisAttemptStore
from bot.channels.webchat.limits import WebChatGuard
from bot.channels.webchat.store import RedisWebChatStore, WebChatFiles, WebChatMessage
from bot.forms.engine import Form, FormState
from bot.server import build_embedded_app
from messages import render
from scheduler.registry import JOBS
from scheduler.runner import SchedulerRunner
from tests.conftest import REDIS_URL, integration_unavailable
from tests.harness import ChatUser, with_sessions
from tests.images import bomb_png, jpeg, png, truncated_jpeg

TEMPLATE_SAMPLES: dict[str, dict[str, Any]] = {
    "webchat/image_too_many_pixels": {"max_megapixels": 40},
    "webchat/too_many_messages": {"retry_after": 42, "minutes": 1},
    "webchat/too_many_uploads": {"retry_after": 1800, "minutes": 30},
    "webchat/upload_bytes_exceeded": {"retry_after": 1800, "minutes": 30},
    "webchat/too_many_new_chats": {"retry_after": 3600, "minutes": 60},
}


# --- helpers -------------------------------------------------------------------------------------------
def app_with(settings: Settings, db: Database, **limits: Any) -> FastAPI:
    """The all-in-one app as ``tianbao serve`` builds it, with these limits, no background tasks."""
    changed = {"embedded_worker": False, "embedded_scheduler": False, **limits}
    return build_embedded_app(settings.model_copy(update=changed), db=db)


def client_of(app: FastAPI, address: str = "203.0.113.7") -> httpx.AsyncClient:
    """A browser at ``address`` (the connection's address is what the limits count)."""
    transport = httpx.ASGITransport(app=app, client=(address, 50_000))
    return with_sessions(httpx.AsyncClient(transport=transport, base_url="http://testserver"))


@pytest.fixture
async def limited(settings: Settings, db: Database) -> AsyncIterator[FastAPI]:
    app = app_with(settings, db)
    yield app
    await app.state.bot_runtime.close()


async def ask_for_a_photo(app: FastAPI, chat_id: str) -> None:
    """Leave the chat where the form engine leaves it at a question that takes photos and videos:
    claims' "send the photos now" step (``evidence``), in the conversation's own FSM storage."""
    runtime = app.state.bot_runtime
    number = runtime.webchat_session.register_chat(chat_id)
    state = runtime.dispatcher.fsm.get_context(runtime.webchat_bot, chat_id=number, user_id=number)
    await state.set_state(FormState.filling)
    await state.set_data({"form": Form(flow="evidence", step="evidence").to_json()})


async def post_photo(
    client: httpx.AsyncClient, chat_id: str, data: bytes, name: str = "loss.png", lang: str = "zh-CN"
) -> httpx.Response:
    return await client.post(
        f"/webchat/api/{chat_id}/photos",
        files={"file": (name, io.BytesIO(data), "image/png")},
        headers={"Accept-Language": lang},
    )


async def count(db: Database, model: Any, *where: Any) -> int:
    async with db.session() as session:
        query = select(func.count()).select_from(model)
        for condition in where:
            query = query.where(condition)
        return int((await session.execute(query)).scalar_one())


def noise_png(side: int) -> bytes:
    """A photo that does not compress: about ``3 * side**2`` bytes."""
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), secrets.token_bytes(3 * side * side)).save(out, format="PNG")
    return out.getvalue()


# --- a file only where a question asks for one -----------------------------------------------------------
async def test_a_photo_no_question_asked_for_is_refused_and_nothing_is_kept(
    chat_client: httpx.AsyncClient, db: Database
) -> None:
    user = ChatUser(chat_client, "no-question-1")
    await user.say("/start")
    before = await user.history()
    response = await post_photo(chat_client, user.chat_id, png())
    assert response.status_code == 409
    body = response.json()["detail"]
    assert body["code"] == "upload_not_expected"
    assert body["message"] == render("webchat/upload_not_expected", "zh-CN", ext="txt").strip()
    assert "没有保存" in body["message"]
    assert await count(db, WebChatFileRecord) == 0
    assert await user.history() == before  # the bot was not fed the photo: nothing more in the chat


async def test_the_refusal_speaks_the_chats_language(chat_client: httpx.AsyncClient) -> None:
    user = ChatUser(chat_client, "no-question-en", language_code="en")
    await user.say("/start")
    response = await post_photo(chat_client, user.chat_id, png(), lang="en")
    assert response.status_code == 409
    assert "was not kept" in response.json()["detail"]["message"]


async def test_a_photo_the_question_asks_for_is_kept(
    embedded: FastAPI, chat_client: httpx.AsyncClient, db: Database
) -> None:
    user = ChatUser(chat_client, "asked-1")
    await user.say("/start")
    await ask_for_a_photo(embedded, user.chat_id)
    response = await post_photo(chat_client, user.chat_id, png())
    assert response.status_code == 200, response.text
    assert response.json()["replies"], "the step answers the photo"
    assert await count(db, WebChatFileRecord, WebChatFileRecord.chat_id == user.chat_id) == 1


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"BM this is a text file, not a bitmap\n" * 20, 415, "not_an_image"),
        (truncated_jpeg(), 415, "not_an_image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, 415, "not_an_image"),  # the signature and nothing else
        (bomb_png(), 422, "image_too_many_pixels"),  # 400 megapixels: Pillow's own guard
        (bomb_png(7_000, 7_000), 422, "image_too_many_pixels"),  # 49: under Pillow's, over ours (40)
    ],
    ids=["text-starting-BM", "truncated-jpeg", "png-signature-only", "bomb-20000", "bomb-7000"],
)
async def test_a_file_that_is_not_a_whole_photo_is_refused_where_photos_are_asked(
    embedded: FastAPI, chat_client: httpx.AsyncClient, db: Database, data: bytes, status: int, code: str
) -> None:
    await ChatUser(chat_client, "asked-2").say("/start")
    await ask_for_a_photo(embedded, "asked-2")
    response = await post_photo(chat_client, "asked-2", data)
    assert response.status_code == status, response.text
    assert response.json()["detail"]["code"] == code
    assert response.json()["detail"]["message"]
    assert await count(db, WebChatFileRecord) == 0


async def test_a_whole_jpeg_is_kept_as_sent(
    embedded: FastAPI, chat_client: httpx.AsyncClient, db: Database
) -> None:
    photo = jpeg()
    await ChatUser(chat_client, "asked-3").say("/start")
    await ask_for_a_photo(embedded, "asked-3")
    response = await post_photo(chat_client, "asked-3", photo, name="现场照片.jpg")
    assert response.status_code == 200, response.text
    async with db.session() as session:
        stored = (await session.execute(select(WebChatFileRecord))).scalars().one()
    assert bytes(stored.data) == photo  # the original bytes, verified, not a re-encoding
    download = await chat_client.get(f"/webchat/files/asked-3/{stored.token}")
    assert download.status_code == 200
    assert (
        "filename*=UTF-8''%E7%8E%B0%E5%9C%BA%E7%85%A7%E7%89%87.jpg" in download.headers["content-disposition"]
    )


# --- limits ------------------------------------------------------------------------------------------------
async def test_a_chat_past_its_messages_per_minute_gets_429_with_a_text(
    settings: Settings, db: Database
) -> None:
    app = app_with(settings, db, webchat_messages_per_minute=3)
    async with client_of(app) as client:
        for _ in range(3):
            ok = await client.post("/webchat/api/fast-1/messages", json={"text": "你好"})
            assert ok.status_code == 200, ok.text
        refused = await client.post(
            "/webchat/api/fast-1/messages", json={"text": "你好"}, headers={"Accept-Language": "zh-CN"}
        )
        assert refused.status_code == 429
        detail = refused.json()["detail"]
        assert set(detail) == {"code", "message", "detail"}  # the API's error shape (ErrorOut)
        assert detail["code"] == "too_many_messages"
        assert "太快" in detail["message"] and "秒后再发" in detail["message"]
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        # Another chat from the same address is not this chat's limit.
        other = await client.post("/webchat/api/fast-2/messages", json={"text": "你好"})
        assert other.status_code == 200
    await app.state.bot_runtime.close()


async def test_an_address_past_its_messages_per_minute_is_refused_in_every_chat(
    settings: Settings, db: Database
) -> None:
    app = app_with(settings, db, webchat_messages_per_minute_per_address=4)
    async with client_of(app, "198.51.100.1") as busy, client_of(app, "198.51.100.2") as other:
        for n in range(4):
            assert (
                await busy.post(f"/webchat/api/office-{n}/messages", json={"text": "hi"})
            ).status_code == 200
        refused = await busy.post("/webchat/api/office-9/messages", json={"text": "hi"})
        assert refused.status_code == 429 and refused.json()["detail"]["code"] == "too_many_messages"
        assert (await other.post("/webchat/api/elsewhere/messages", json={"text": "hi"})).status_code == 200
    await app.state.bot_runtime.close()


async def test_an_address_may_open_only_so_many_new_chats_an_hour(settings: Settings, db: Database) -> None:
    app = app_with(settings, db, webchat_new_chats_per_hour_per_address=2)
    async with client_of(app, "192.0.2.10") as client, client_of(app, "192.0.2.11") as neighbour:
        for chat in ("new-a", "new-b"):
            assert (
                await client.post(f"/webchat/api/{chat}/messages", json={"text": "/start"})
            ).status_code == 200
        refused = await client.post(
            "/webchat/api/new-c/messages", json={"text": "/start"}, headers={"Accept-Language": "en"}
        )
        assert refused.status_code == 429
        assert refused.json()["detail"]["code"] == "too_many_new_chats"
        assert "new chats" in refused.json()["detail"]["message"]
        assert int(refused.headers["retry-after"]) > 60  # an hour's window
        # Nothing was made for the refused chat; chats already open carry on.
        assert await count(db, WebChatThread, WebChatThread.chat_id == "new-c") == 0
        assert await count(db, ChatIdentity, ChatIdentity.external_id == "new-c") == 0
        assert (await client.post("/webchat/api/new-a/messages", json={"text": "你好"})).status_code == 200
        assert (
            await neighbour.post("/webchat/api/new-d/messages", json={"text": "/start"})
        ).status_code == 200
    await app.state.bot_runtime.close()


async def test_uploads_past_the_bytes_per_hour_are_refused_and_not_kept(
    settings: Settings, db: Database
) -> None:
    app = app_with(settings, db, webchat_upload_bytes_per_hour=1024 * 1024)
    photo = noise_png(360)  # ~390 KB: two fit in 1 MiB, three do not
    assert 350_000 < len(photo) < 500_000
    async with client_of(app) as client:
        await client.post("/webchat/api/bytes-1/messages", json={"text": "/start"})
        await ask_for_a_photo(app, "bytes-1")
        for _ in range(2):
            assert (await post_photo(client, "bytes-1", photo)).status_code == 200
            await ask_for_a_photo(app, "bytes-1")  # still the photos question
        refused = await post_photo(client, "bytes-1", photo)
        assert refused.status_code == 429
        assert refused.json()["detail"]["code"] == "upload_bytes_exceeded"
        assert "没有保存" in refused.json()["detail"]["message"]
        assert await count(db, WebChatFileRecord) == 2
        # What a refused upload took is given back: a small photo still fits.
        assert (await post_photo(client, "bytes-1", png())).status_code == 200
    await app.state.bot_runtime.close()


async def test_uploads_past_the_count_per_hour_are_refused(settings: Settings, db: Database) -> None:
    app = app_with(settings, db, webchat_uploads_per_hour=2)
    async with client_of(app) as client:
        await client.post("/webchat/api/count-1/messages", json={"text": "/start"})
        for _ in range(2):
            await ask_for_a_photo(app, "count-1")
            assert (await post_photo(client, "count-1", png())).status_code == 200
        await ask_for_a_photo(app, "count-1")
        refused = await post_photo(client, "count-1", png())
        assert refused.status_code == 429 and refused.json()["detail"]["code"] == "too_many_uploads"
        assert await count(db, WebChatFileRecord) == 2
    await app.state.bot_runtime.close()


@pytest.fixture
async def redis_client() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        integration_unavailable(f"Redis unreachable at {REDIS_URL}: {exc}")
    yield client
    await client.aclose()


async def test_two_bot_processes_share_the_counts_through_redis(
    settings: Settings, db: Database, redis_client: Redis
) -> None:
    """Two apps on one Redis (as two bot replicas): a chat's messages and an address's new chats
    count once, whichever replica served them."""
    prefix = f"tianbao-test-{uuid.uuid4().hex}:limit:"
    limits = {
        "redis_url": REDIS_URL,
        "webchat_messages_per_minute": 3,
        "webchat_new_chats_per_hour_per_address": 3,
    }
    first, second = app_with(settings, db, **limits), app_with(settings, db, **limits)
    for app in (first, second):
        channel = app.state.bot_runtime.webchat
        assert isinstance(channel.guard.store, RedisAttemptStore)  # what the runtime chose for Redis
        channel.guard = WebChatGuard(channel.guard.store, channel.limits, prefix=prefix)
    chat = f"shared-{uuid.uuid4().hex[:12]}"
    try:
        async with client_of(first) as one, client_of(second) as two:
            assert (
                await one.post(f"/webchat/api/{chat}/messages", json={"text": "/start"})
            ).status_code == 200
            assert (await two.post(f"/webchat/api/{chat}/messages", json={"text": "你好"})).status_code == 200
            assert (await one.post(f"/webchat/api/{chat}/messages", json={"text": "你好"})).status_code == 200
            refused = await two.post(f"/webchat/api/{chat}/messages", json={"text": "你好"})
            assert refused.status_code == 429 and refused.json()["detail"]["code"] == "too_many_messages"
            # New chats from one address: two more, one on each replica, then the fourth is refused.
            for client in (two, one):
                new = f"shared-{uuid.uuid4().hex[:12]}"
                assert (
                    await client.post(f"/webchat/api/{new}/messages", json={"text": "/start"})
                ).status_code == 200
            late = await two.post(
                f"/webchat/api/shared-{uuid.uuid4().hex[:12]}/messages", json={"text": "/start"}
            )
            assert late.status_code == 429 and late.json()["detail"]["code"] == "too_many_new_chats"
    finally:
        for app in (first, second):
            await app.state.bot_runtime.close()
        keys = [key async for key in redis_client.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis_client.delete(*keys)


# --- expiry of idle anonymous chats ---------------------------------------------------------------------
async def _backdate(db: Database, chat_id: str, days: int) -> None:
    async with db.session() as session:
        await session.execute(
            update(WebChatThread)
            .where(WebChatThread.chat_id == chat_id)  # type: ignore[arg-type]
            .values(updated_at=utcnow() - timedelta(days=days))
        )
        await session.commit()


async def _chat_rows(db: Database, chat_id: str) -> dict[str, int]:
    return {
        "thread": await count(db, WebChatThread, WebChatThread.chat_id == chat_id),
        "messages": await count(db, WebChatRecord, WebChatRecord.chat_id == chat_id),
        "files": await count(db, WebChatFileRecord, WebChatFileRecord.chat_id == chat_id),
        "state": await count(db, ConversationState, ConversationState.key == sql_state_key(chat_id)),
        "inputs": await count(db, ConversationState, ConversationState.key == sql_inputs_key(chat_id)),
        "identity": await count(db, ChatIdentity, ChatIdentity.external_id == chat_id),
    }


async def test_the_hourly_job_expires_idle_anonymous_chats_with_their_files_and_keeps_the_others(
    embedded: FastAPI, chat_client: httpx.AsyncClient, db: Database
) -> None:
    idle, bound, recent = (ChatUser(chat_client, name) for name in ("idle-anon", "idle-bound", "recent-anon"))
    for user in (idle, bound, recent):
        await user.say("/start")
        remembered = {"text": "/start", "client_id": f"hello-{user.chat_id}-0000000000"}
        assert (await chat_client.post(f"/webchat/api/{user.chat_id}/messages", json=remembered)).is_success
    await bound.share_proved_contact("13812345678")
    for user in (idle, bound, recent):
        await ask_for_a_photo(embedded, user.chat_id)  # FSM state in the database
        assert (await post_photo(chat_client, user.chat_id, png())).status_code == 200
        await ask_for_a_photo(embedded, user.chat_id)
    for user in (idle, bound):
        await _backdate(db, user.chat_id, days=8)
    await _backdate(db, recent.chat_id, days=6)
    async with db.session() as session:
        owner = await session.execute(
            select(ChatIdentity).where(ChatIdentity.external_id == "idle-bound")  # type: ignore[arg-type]
        )
        assert owner.scalars().one().person_id is not None, "sharing the phone bound a person"
    before = {user.chat_id: await _chat_rows(db, user.chat_id) for user in (idle, bound, recent)}
    assert all(
        rows["files"] == 1 and rows["state"] == rows["inputs"] == 1 and rows["messages"] > 0
        for rows in before.values()
    )

    job = next(spec for spec in JOBS if spec.id == "webchat-expiry")
    assert isinstance(job.trigger, IntervalTrigger) and job.trigger.interval == timedelta(hours=1)
    report = await SchedulerRunner(db).run_job(job)

    assert report is not None and report.chats == 1 and report.identities == 1
    assert await _chat_rows(db, idle.chat_id) == {k: 0 for k in before[idle.chat_id]}
    assert await _chat_rows(db, bound.chat_id) == before[bound.chat_id]
    assert await _chat_rows(db, recent.chat_id) == before[recent.chat_id]
    again = await SchedulerRunner(db).run_job(job)
    assert again is not None and again.chats == 0  # idempotent
    # The expired chat starts afresh if its browser comes back.
    assert (await idle.say("/start"))[0].text


async def test_expiry_deletes_in_batches_with_one_statement_per_table(
    embedded: FastAPI, chat_client: httpx.AsyncClient, db: Database
) -> None:
    chats = [f"batch-{n}" for n in range(7)]
    for chat in chats:
        await ChatUser(chat_client, chat).say("/start")
        await _backdate(db, chat, days=30)
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        async with db.session() as session:
            report = await expire_idle_webchats(session=session, idle_days=7, batch_size=3)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)
    assert report.chats == 7
    # 3 batches (3 + 3 + 1) x 5 tables (thread, messages, files, state, identity): never a row at a time.
    assert len(statements) == 15, statements
    for chat in chats:
        assert (await _chat_rows(db, chat))["thread"] == 0


async def test_expiry_keeps_an_identity_that_other_records_name(db: Database) -> None:
    """An anonymous identity that left a message for staff (a StaffAlert names it) keeps its row; its
    chat's transcript still goes."""
    async with db.session() as session:
        session.add(
            WebChatThread(chat_id="named-1", last_message_id=1, updated_at=utcnow() - timedelta(days=9))
        )
        identity = ChatIdentity(channel="webchat", external_id="named-1", address="named-1")
        session.add(identity)
        await session.commit()
        identity_id = identity.id
        session.add(
            StaffAlert(
                kind="insured_message",
                region_code="441900000000",
                title="留言",
                identity_id=identity_id,
                dedupe_key=f"message-{uuid.uuid4().hex}",
            )
        )
        await session.commit()
        report = await expire_idle_webchats(session=session, idle_days=7)
    assert report.chats == 1 and report.identities == 0
    assert await count(db, ChatIdentity, ChatIdentity.id == identity_id) == 1


async def test_expiry_of_the_redis_layout_deletes_keys_and_files_of_idle_anonymous_chats(
    db: Database, redis_client: Redis, tmp_path: Path
) -> None:
    """Production keeps transcripts and FSM state in Redis and files on the shared volume."""
    prefix = f"tianbao-test-{uuid.uuid4().hex}"
    store = RedisWebChatStore(redis_client, prefix=prefix)
    files = WebChatFiles(tmp_path / "webchat")
    idle, bound, recent = (f"{name}-{uuid.uuid4().hex[:8]}" for name in ("idle", "bound", "recent"))
    fsm = RedisStorage(redis=redis_client)  # aiogram's, as the bot's dispatcher keeps state in Redis
    for chat in (idle, bound, recent):
        await store.append(chat, WebChatMessage(0, "欢迎"))
        assert await store.claim_input(chat, "input-000000000001") is None  # a client id remembered
        await store.finish_input(chat, "input-000000000001", [1])
        await files.save(chat, "loss.png", png())
        number = numeric_id(chat)
        key = StorageKey(bot_id=WEBCHAT_BOT_ID, chat_id=number, user_id=number)
        await fsm.set_state(key, FormState.filling)
        await fsm.set_data(key, {"form": Form(flow="evidence", step="evidence").to_json()})
        await redis_client.set(f"fsm:{chat}", "x")  # (not a key of ours: must survive)
    async with db.session() as session:
        person = Person(phone="13812345678")
        session.add(person)
        await session.flush()
        session.add(ChatIdentity(channel="webchat", external_id=bound, address=bound, person_id=person.id))
        session.add(ChatIdentity(channel="webchat", external_id=idle, address=idle))
        await session.commit()
    old = (utcnow() - timedelta(days=8)).timestamp()
    await redis_client.zadd(activity_key(prefix), {idle: old, bound: old})
    try:
        async with db.session() as session:
            report = await expire_idle_webchats(
                session=session,
                idle_days=7,
                redis=redis_client,
                files_root=tmp_path / "webchat",
                redis_prefix=prefix,
            )
        assert report.chats == 1 and report.identities == 1
        assert not await redis_client.exists(*transcript_keys(idle, prefix))
        assert not await redis_client.exists(*redis_state_keys(idle))
        assert not await redis_client.exists(*input_keys(idle, prefix))
        assert await redis_client.exists(*input_keys(bound, prefix)) == 2
        assert await redis_client.exists(*redis_state_keys(bound), *redis_state_keys(recent)) == 4
        assert not files_folder(tmp_path / "webchat", idle).exists()
        for kept in (bound, recent):
            assert await redis_client.exists(*transcript_keys(kept, prefix)) == 3
            assert files_folder(tmp_path / "webchat", kept).exists()
        assert await redis_client.exists(f"fsm:{idle}")
        # The bound chat left the index (kept, not looked at again); the recent one is still in it.
        assert await redis_client.zscore(activity_key(prefix), bound) is None
        assert await redis_client.zscore(activity_key(prefix), recent) is not None
    finally:
        keys = [key async for key in redis_client.scan_iter(match=f"{prefix}*")]
        keys += [f"fsm:{chat}" for chat in (idle, bound, recent)]
        keys += [k for chat in (idle, bound, recent) for k in redis_state_keys(chat)]
        await redis_client.delete(*keys)
