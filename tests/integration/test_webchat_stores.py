"""Both web chat stores keep the same contract: numbered messages, edits in place, history after an
id, and a bounded history. The Redis one is what several bot processes share in production."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from bot.channels.webchat.store import MemoryWebChatStore, RedisWebChatStore, WebChatMessage, WebChatStore
from tests.conftest import REDIS_URL, integration_unavailable

LIMIT = 5
CHAT = "store-chat"


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[WebChatStore]:
    if request.param == "memory":
        yield MemoryWebChatStore(history_limit=LIMIT)
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


async def test_redis_history_expires_when_the_chat_goes_idle(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    store = RedisWebChatStore(redis, history_limit=LIMIT, ttl_days=2)
    await store.append(CHAT, WebChatMessage(0, "hello"))
    ttls = [await redis.ttl(f"tianbao:webchat:{CHAT}:{part}") for part in ("seq", "ids", "msgs")]
    await redis.aclose()
    assert all(2 * 86400 - 5 <= ttl <= 2 * 86400 for ttl in ttls), ttls
