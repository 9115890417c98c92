"""Server-sent events of a web chat: new bot messages (and edits) pushed to the open page.

A plain ``text/event-stream`` (no dependency: the protocol is four lines). Each event's id is the
highest message number the stream has sent, so a reconnecting ``EventSource`` (its ``Last-Event-ID``)
resumes after it. New messages are always read from the chat store, in order: a message the bot says
in this process only wakes the stream up, and every few seconds the stream looks at the store anyway,
so what another process (a delivery worker, another replica) wrote arrives too. An edit of a message
already sent is pushed as it happens in this process. The page falls back to polling when
``EventSource`` is missing or its stream keeps failing.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager

from bot.channels.webchat.store import WebChatMessage, WebChatStore

RETRY_MS = 3000  # how soon EventSource reconnects after a stream ends or drops
CATCH_UP_SECONDS = 3.0  # how often a quiet stream looks at the store (other processes' messages)
PING_SECONDS = 15.0  # a named ping keeps proxies from closing the stream and lets the page see it live
LIFETIME_SECONDS = 300.0  # a stream ends after this; the page reconnects with Last-Event-ID
QUEUE_SIZE = 100  # a listener this far behind misses wake-ups only: the store still has the messages


class ChatEvents:
    """Who listens to which chat in this process; the web chat session publishes to them."""

    def __init__(self) -> None:
        self._listeners: dict[str, set[asyncio.Queue[WebChatMessage]]] = {}

    @contextmanager
    def subscribe(self, chat_id: str) -> Iterator[asyncio.Queue[WebChatMessage]]:
        queue: asyncio.Queue[WebChatMessage] = asyncio.Queue(QUEUE_SIZE)
        self._listeners.setdefault(chat_id, set()).add(queue)
        try:
            yield queue
        finally:
            listeners = self._listeners.get(chat_id, set())
            listeners.discard(queue)
            if not listeners:
                self._listeners.pop(chat_id, None)

    def publish(self, chat_id: str, message: WebChatMessage) -> None:
        for queue in self._listeners.get(chat_id, ()):
            if not queue.full():
                queue.put_nowait(message)

    def listening(self, chat_id: str) -> int:
        return len(self._listeners.get(chat_id, ()))


def frame(event: str, event_id: int, data: str) -> str:
    return f"id: {event_id}\nevent: {event}\ndata: {data}\n\n"


def message_frame(message: WebChatMessage, last_id: int) -> str:
    return frame("message", last_id, json.dumps(message.to_json(), ensure_ascii=False))


async def chat_stream(
    store: WebChatStore,
    events: ChatEvents,
    chat_id: str,
    after: int,
    disconnected: Callable[[], Awaitable[bool]],
    *,
    catch_up: float = CATCH_UP_SECONDS,
    ping: float = PING_SECONDS,
    lifetime: float = LIFETIME_SECONDS,
) -> AsyncGenerator[str, None]:
    """The chat's events after message ``after``, until the client goes or the lifetime ends."""
    last_id = after
    yield f"retry: {RETRY_MS}\n\n"
    with events.subscribe(chat_id) as queue:  # before the first read: nothing said in between is lost

        async def news() -> AsyncIterator[str]:
            nonlocal last_id
            for message in await store.after(chat_id, last_id):
                last_id = max(last_id, message.id)
                yield message_frame(message, last_id)

        async for chunk in news():
            yield chunk
        started = last_write = time.monotonic()
        while time.monotonic() - started < lifetime and not await disconnected():
            left = lifetime - (time.monotonic() - started)
            try:
                woken: WebChatMessage | None = await asyncio.wait_for(queue.get(), min(catch_up, left))
            except TimeoutError:
                woken = None
            if woken is not None and woken.id <= last_id:  # an edit of a message the page has
                yield message_frame(woken, last_id)
                last_write = time.monotonic()
                continue
            async for chunk in news():
                yield chunk
                last_write = time.monotonic()
            if time.monotonic() - last_write >= ping:
                yield frame("ping", last_id, "")
                last_write = time.monotonic()
