"""Every web chat store keeps the same contract: numbered messages, edits in place, history after an
id, and a bounded history. The Redis one is what several bot processes share in production; the SQL
one keeps the embedded default's chats (and PostgreSQL's without Redis) across restarts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiogram.fsm.storage.base import BaseStorage, StorageKey
from aiogram.fsm.storage.memory import MemoryStorage
from redis.asyncio import Redis
from sqlalchemy import text

from backend.db import Database
from backend.settings import Settings
from bot.channels.webchat.store import (
    INPUTS_KEPT,
    MemoryWebChatStore,
    RedisWebChatStore,
    SeenInput,
    WebChatFiles,
    WebChatFileStore,
    WebChatMessage,
    WebChatStore,
)
from bot.sqlstore import SqlStorage, SqlWebChatFiles, SqlWebChatStore
from tests.conftest import REDIS_URL, integration_unavailable, make_settings

LIMIT = 5
CHAT = "store-chat"
CHAT_TABLES = "webchat_thread, webchat_message, webchat_file, conversation_state"


def _database_settings(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> Settings:
    """The SQL stores on both databases: the embedded default, and PostgreSQL without Redis."""
    if kind == "sqlite":
        sqlite_settings: Settings = request.getfixturevalue("settings")  # a copy of the template
        return sqlite_settings
    url: str = request.getfixturevalue("migrated_postgres")
    return make_settings(tmp_path, database_url=url)


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return _database_settings(request, request.param, tmp_path)


# Parametrised here, in sync fixtures: the database fixtures build their schema with asyncio.run.
@pytest.fixture(params=["memory", "redis", "sqlite", "postgresql"])
def store_kind(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Settings | None]:
    if request.param in ("sqlite", "postgresql"):
        return "sql", _database_settings(request, request.param, tmp_path)
    return request.param, None


@pytest.fixture(params=["disk", "sqlite", "postgresql"])
def files_kind(request: pytest.FixtureRequest, tmp_path: Path) -> Settings | None:
    return None if request.param == "disk" else _database_settings(request, request.param, tmp_path)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def fsm_kind(request: pytest.FixtureRequest, tmp_path: Path) -> Settings | None:
    return None if request.param == "memory" else _database_settings(request, request.param, tmp_path)


async def _sql_database(settings: Settings) -> Database:
    db = Database(settings)
    if not db.is_sqlite:  # one PostgreSQL database serves the whole run: start each test empty
        async with db.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {CHAT_TABLES}"))
    return db


@pytest.fixture
async def store(store_kind: tuple[str, Settings | None]) -> AsyncIterator[WebChatStore]:
    kind, database_settings = store_kind
    if kind == "memory":
        yield MemoryWebChatStore(history_limit=LIMIT)
        return
    if database_settings is not None:
        db = await _sql_database(database_settings)
        yield SqlWebChatStore(db.engine, history_limit=LIMIT)
        await db.dispose()
        return
    redis = Redis.from_url(REDIS_URL)
    try:
        await redis.flushdb()  # the same database the redis_url fixture flushes
    except Exception as exc:
        await redis.aclose()
        integration_unavailable(f"Redis unreachable at {REDIS_URL}: {exc}")
    yield RedisWebChatStore(redis, history_limit=LIMIT, ttl_days=2)
    await redis.flushdb()
    await redis.aclose()


def _message(text: str) -> WebChatMessage:
    return WebChatMessage(
        0,
        text,
        buttons=[[{"text": "投保", "callback_data": "menu:enroll"}]],
        keyboard=[[{"text": "分享手机号", "request_contact": True, "request_location": False}]],
    )


async def test_messages_are_numbered_per_chat_and_read_back_as_sent(store: WebChatStore) -> None:
    first = await store.append(CHAT, _message("您好，王大明！"))
    second = await store.append(CHAT, WebChatMessage(0, '<b>田保</b> "quoted" \\ back'))
    other = await store.append("other-chat", _message("x"))
    assert (first.id, second.id, other.id) == (1, 2, 1)
    assert await store.get(CHAT, 1) == first and first.text == "您好，王大明！"
    assert await store.get(CHAT, 2) == second
    assert first.buttons == [[{"text": "投保", "callback_data": "menu:enroll"}]] and first.keyboard
    assert await store.get(CHAT, 3) is None


async def test_a_chat_exists_once_the_bot_has_said_something_in_it(store: WebChatStore) -> None:
    """What the web chat's new-chats-per-address limit asks (bot/channels/webchat/limits.py)."""
    assert not await store.exists(CHAT)
    await store.append(CHAT, _message("您好"))
    assert await store.exists(CHAT) and not await store.exists("other-chat")


async def test_an_erased_chat_forgets_its_messages_and_inputs_but_numbers_on(store: WebChatStore) -> None:
    """Ending a device erases its web chat: nothing of before can be read or answered again, and the
    next message is numbered after the last (the page shows what comes after what it has seen)."""
    await store.append(CHAT, _message("保单 PL1"))
    await store.append(CHAT, _message("理赔 CL1"))
    await store.append("other-chat", _message("x"))
    assert await store.claim_input(CHAT, "c-1") is None
    await store.finish_input(CHAT, "c-1", [2])
    await store.erase(CHAT)
    assert await store.after(CHAT, 0) == [] and await store.get(CHAT, 1) is None
    assert await store.claim_input(CHAT, "c-1") is None  # a resend of an old input runs afresh
    assert (await store.append(CHAT, _message("您好"))).id == 3
    assert [m.text for m in await store.after("other-chat", 0)] == ["x"]


async def test_an_edit_replaces_the_message_in_place(store: WebChatStore) -> None:
    sent = await store.append(CHAT, _message("old"))
    edited = WebChatMessage(sent.id, "new", edited=True)
    await store.replace(CHAT, edited)
    assert await store.get(CHAT, sent.id) == edited
    await store.replace(CHAT, WebChatMessage(99, "never sent"))  # not stored: nothing to edit
    assert await store.get(CHAT, 99) is None


async def test_history_after_an_id_is_in_order_and_bounded(store: WebChatStore) -> None:
    for n in range(LIMIT + 3):
        await store.append(CHAT, WebChatMessage(0, f"m{n}"))
    kept = await store.after(CHAT, 0)
    assert [m.id for m in kept] == list(range(4, LIMIT + 4))  # the oldest three were trimmed
    assert [m.text for m in await store.after(CHAT, 6, limit=1)] == ["m6"]
    assert await store.get(CHAT, 1) is None


async def test_concurrent_appends_get_distinct_ids_and_keep_the_bound(store: WebChatStore) -> None:
    stored = await asyncio.gather(*(store.append(CHAT, WebChatMessage(0, f"m{n}")) for n in range(20)))
    assert sorted(m.id for m in stored) == list(range(1, 21))
    assert [m.id for m in await store.after(CHAT, 0)] == list(range(16, 21))


async def test_an_input_is_claimed_once_and_answered_with_its_replies(store: WebChatStore) -> None:
    """A resend after a dropped connection (issue 12): seen while running, then answered."""
    client_id = "c" * 20
    assert await store.claim_input(CHAT, client_id) is None  # the first try holds the claim
    assert await store.claim_input(CHAT, client_id) == SeenInput(None)  # a resend while it runs
    assert await store.claim_input("other-chat", client_id) is None  # per chat
    await store.finish_input(CHAT, client_id, [3, 4])
    assert await store.claim_input(CHAT, client_id) == SeenInput((3, 4))
    await store.finish_input(CHAT, "never-claimed-0000", [1])
    assert await store.claim_input(CHAT, "never-claimed-0000") is None, "finishing claims nothing"


async def test_a_failed_input_is_released_so_a_retry_runs_it(store: WebChatStore) -> None:
    client_id = "r" * 20
    assert await store.claim_input(CHAT, client_id) is None
    await store.release_input(CHAT, client_id)
    assert await store.claim_input(CHAT, client_id) is None
    await store.finish_input(CHAT, client_id, [])
    assert await store.claim_input(CHAT, client_id) == SeenInput(())  # answered with nothing


async def test_a_chat_remembers_a_bounded_number_of_inputs(store: WebChatStore) -> None:
    ids = [f"input-{n:012d}" for n in range(INPUTS_KEPT + 3)]
    for n, client_id in enumerate(ids):
        assert await store.claim_input(CHAT, client_id) is None
        await store.finish_input(CHAT, client_id, [n])
    assert await store.claim_input(CHAT, ids[-1]) == SeenInput((len(ids) - 1,))
    assert await store.claim_input(CHAT, ids[3]) == SeenInput((3,))
    assert await store.claim_input(CHAT, ids[0]) is None, "the oldest are forgotten"


async def test_redis_history_expires_when_the_chat_goes_idle(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    store = RedisWebChatStore(redis, history_limit=LIMIT, ttl_days=2)
    await store.append(CHAT, WebChatMessage(0, "hello"))
    ttls = [await redis.ttl(f"tianbao:webchat:{CHAT}:{part}") for part in ("seq", "ids", "msgs")]
    assert all(2 * 86400 - 5 <= ttl <= 2 * 86400 for ttl in ttls[1:]), ttls
    assert ttls[0] == -1  # the counter stays: numbering never restarts
    await redis.delete(f"tianbao:webchat:{CHAT}:ids", f"tianbao:webchat:{CHAT}:msgs")  # as on expiry
    next_id = (await store.append(CHAT, WebChatMessage(0, "back after a month"))).id
    await redis.aclose()
    assert next_id == 2


async def test_sql_numbering_never_restarts_across_trimming_and_restarts(sql_settings: Settings) -> None:
    db = await _sql_database(sql_settings)
    first_run = SqlWebChatStore(db.engine, history_limit=2)
    for n in range(4):
        await first_run.append(CHAT, WebChatMessage(0, f"m{n}"))
    after_restart = SqlWebChatStore(db.engine, history_limit=2)  # a new process on the same database
    kept = [m.text for m in await after_restart.after(CHAT, 0)]
    next_id = (await after_restart.append(CHAT, WebChatMessage(0, "next"))).id
    await db.dispose()
    assert kept == ["m2", "m3"] and next_id == 5


@pytest.fixture
async def files(files_kind: Settings | None, tmp_path: Path) -> AsyncIterator[WebChatFileStore]:
    if files_kind is None:
        yield WebChatFiles(tmp_path / "webchat")
        return
    db = await _sql_database(files_kind)
    yield SqlWebChatFiles(db.engine)
    await db.dispose()


async def test_files_are_found_by_their_chat_and_token_only(files: WebChatFileStore) -> None:
    token = await files.save(CHAT, "电子保单/2026.pdf", b"%PDF-1.7 ...")
    stored = await files.load(CHAT, token)
    assert stored is not None and stored.data == b"%PDF-1.7 ..." and stored.name == "电子保单_2026.pdf"
    assert await files.load("other-chat", token) is None  # the token is only shown to that chat
    assert await files.load(CHAT, "../../etc/passwd") is None
    by_token = await files.load_token(token)
    assert by_token is not None and by_token.chat_id == CHAT
    assert await files.load_token("A" * 24) is None


async def test_an_erased_chat_loses_its_files_only(files: WebChatFileStore) -> None:
    mine = await files.save(CHAT, "电子保单.pdf", b"%PDF-1.7 mine")
    theirs = await files.save("other-chat", "电子保单.pdf", b"%PDF-1.7 theirs")
    await files.erase(CHAT)
    await files.erase("../..")  # a name that would walk out of the folder erases nothing
    assert await files.load(CHAT, mine) is None and await files.load_token(mine) is None
    assert await files.load("other-chat", theirs) is not None


@pytest.fixture
async def fsm(fsm_kind: Settings | None) -> AsyncIterator[BaseStorage]:
    if fsm_kind is None:
        yield MemoryStorage()
        return
    db = await _sql_database(fsm_kind)
    yield SqlStorage(db.engine)
    await db.dispose()


async def test_conversation_state_and_data_are_kept_and_cleared(fsm: BaseStorage) -> None:
    key = StorageKey(bot_id=1, chat_id=42, user_id=42)
    other_bot = StorageKey(bot_id=2, chat_id=42, user_id=42)
    assert await fsm.get_state(key) is None and await fsm.get_data(key) == {}
    await fsm.set_state(key, "EnrollForm:answer")
    await fsm.set_data(key, {"form": {"flow": "farmer", "step": 3, "answers": {"名": "王大明"}}})
    assert await fsm.update_data(key, {"extra": 1}) == {
        "form": {"flow": "farmer", "step": 3, "answers": {"名": "王大明"}},
        "extra": 1,
    }
    assert await fsm.get_state(key) == "EnrollForm:answer"
    assert await fsm.get_state(other_bot) is None  # Telegram's bot and the web chat's do not mix
    await fsm.set_state(key, None)
    await fsm.set_data(key, {})
    assert await fsm.get_state(key) is None and await fsm.get_data(key) == {}
    await fsm.close()


async def test_sql_conversation_survives_a_new_storage_and_leaves_no_empty_rows(
    sql_settings: Settings,
) -> None:
    db = await _sql_database(sql_settings)
    key = StorageKey(bot_id=1, chat_id=7, user_id=7)
    await SqlStorage(db.engine).set_state(key, "ClaimForm:answer")
    await SqlStorage(db.engine).set_data(key, {"form": {"step": 2}})
    restarted = SqlStorage(db.engine)
    assert await restarted.get_state(key) == "ClaimForm:answer"
    assert await restarted.get_data(key) == {"form": {"step": 2}}
    await restarted.set_state(key, None)
    await restarted.set_data(key, {})
    async with db.engine.connect() as conn:
        left = (await conn.execute(text("SELECT count(*) FROM conversation_state"))).scalar_one()
    await db.dispose()
    assert left == 0
