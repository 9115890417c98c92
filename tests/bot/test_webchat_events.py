"""Server-sent events of the web chat (issue 12): new messages pushed, resumable by message number."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from bot.channels.webchat.events import ChatEvents, chat_stream
from bot.channels.webchat.store import MemoryWebChatStore, WebChatMessage
from tests.harness import ChatUser

CHAT = "events-chat"


class Client:
    """Connected until told otherwise."""

    def __init__(self) -> None:
        self.gone = False

    async def disconnected(self) -> bool:
        return self.gone


async def _next_event(stream: AsyncIterator[str]) -> tuple[int, str, dict[str, object] | None]:
    """The next id/event/data frame, skipping the retry line."""
    while True:
        chunk = await asyncio.wait_for(anext(stream), 5)
        fields = dict(line.split(": ", 1) for line in chunk.strip().splitlines() if ": " in line)
        if "event" in fields:
            data = json.loads(fields["data"]) if fields["data"] else None
            return int(fields["id"]), fields["event"], data


async def test_the_stream_sends_what_follows_the_number_then_pushes_new_and_edited_messages() -> None:
    store, events, client = MemoryWebChatStore(), ChatEvents(), Client()
    for text in ("一", "二", "三"):
        await store.append(CHAT, WebChatMessage(0, text))
    stream = chat_stream(store, events, CHAT, 1, client.disconnected, catch_up=30)
    assert await anext(stream) == "retry: 3000\n\n"
    assert [(await _next_event(stream))[::2] for _ in range(2)] == [
        (2, {**WebChatMessage(2, "二").to_json()}),
        (3, {**WebChatMessage(3, "三").to_json()}),
    ]
    waiting = asyncio.ensure_future(_next_event(stream))
    await asyncio.sleep(0.05)
    assert events.listening(CHAT) == 1
    new = await store.append(CHAT, WebChatMessage(0, "四"))
    events.publish(CHAT, new)
    assert await waiting == (4, "message", new.to_json())
    edited = WebChatMessage(2, "二（改）", edited=True)
    await store.replace(CHAT, edited)
    events.publish(CHAT, edited)
    assert await _next_event(stream) == (4, "message", edited.to_json()), "the id stays the highest sent"
    client.gone = True
    events.publish(CHAT, edited)  # wakes the stream, which sees the client gone
    await stream.aclose()
    assert events.listening(CHAT) == 0


async def test_messages_another_process_wrote_arrive_by_the_stores_catch_up() -> None:
    store, events, client = MemoryWebChatStore(), ChatEvents(), Client()
    stream = chat_stream(store, events, CHAT, 0, client.disconnected, catch_up=0.05)
    await anext(stream)
    waiting = asyncio.ensure_future(_next_event(stream))
    await asyncio.sleep(0.1)
    written = await store.append(CHAT, WebChatMessage(0, "来自另一个进程"))  # no publish here
    assert await waiting == (1, "message", written.to_json())
    await stream.aclose()


async def test_a_quiet_stream_pings_and_ends_after_its_lifetime() -> None:
    store, events, client = MemoryWebChatStore(), ChatEvents(), Client()
    stream = chat_stream(store, events, CHAT, 7, client.disconnected, catch_up=0.02, ping=0.05, lifetime=0.3)
    chunks = [chunk async for chunk in stream]
    assert any("event: ping" in chunk and "id: 7" in chunk for chunk in chunks)
    assert events.listening(CHAT) == 0


async def test_the_events_route_needs_the_chats_session(embedded: FastAPI) -> None:
    transport = httpx.ASGITransport(app=embedded)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as stranger:
        response = await stranger.get("/webchat/api/farmer-wang/events", headers={"Accept-Language": "en"})
    assert response.status_code == 403
    assert response.json()["detail"]["code"] == "session_required"


async def test_the_events_route_resumes_after_the_last_event_id(embedded: FastAPI, farmer: ChatUser) -> None:
    embedded.state.bot_runtime.webchat.stream_lifetime = 0.2  # a short stream: the client reads it whole
    await farmer.say("/start")
    await farmer.say("/start")
    numbers = [m.id for m in await farmer.history()]
    assert len(numbers) >= 2
    resumed = await farmer.client.get(
        f"/webchat/api/{farmer.chat_id}/events", headers={"Last-Event-ID": str(numbers[0])}
    )
    assert resumed.status_code == 200
    assert resumed.headers["content-type"].startswith("text/event-stream")
    sent = [json.loads(line[6:])["id"] for line in resumed.text.splitlines() if line.startswith("data: {")]
    assert sent == numbers[1:], "everything after the last event id, nothing before"
    from_query = await farmer.client.get(
        f"/webchat/api/{farmer.chat_id}/events", params={"after": numbers[-1]}
    )
    assert "data: {" not in from_query.text
