"""Web chat sessions (issue 12): the chat id alone grants nothing; a signed cookie names the chat."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from bot.channels.webchat.access import COOKIE_NAME, MAX_AGE_SECONDS, WebChatSessions
from tests.conftest import SECRET_KEY
from tests.harness import ChatUser


@pytest.fixture
async def stranger(embedded: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A browser with no session of its own (the harness's signing hook is not installed)."""
    transport = httpx.ASGITransport(app=embedded)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def _victim_with_a_document(farmer: ChatUser) -> str:
    """The farmer's chat, with history; returns the address of a file the bot sent in it."""
    await farmer.say("/start")
    history = await farmer.history()
    assert history, "the chat has messages to steal"
    token = "f" * 24
    stored = await farmer.client.get(f"/webchat/files/{farmer.chat_id}/{token}")
    assert stored.status_code == 404  # the owner is let in; the file simply does not exist
    return f"/webchat/files/{farmer.chat_id}/{token}"


def _refused(response: httpx.Response, locale_word: str) -> None:
    assert response.status_code == 403, response.text
    detail = response.json()["detail"]
    assert detail["code"] == "session_required"
    assert locale_word in detail["message"]


async def test_guessing_a_chat_id_reads_nothing_posts_nothing_downloads_nothing(
    farmer: ChatUser, stranger: httpx.AsyncClient
) -> None:
    file_url = await _victim_with_a_document(farmer)
    before = len(await farmer.history())
    chat = farmer.chat_id
    zh = {"Accept-Language": "zh-CN"}
    _refused(await stranger.get(f"/webchat/api/{chat}/messages", headers=zh), "对话")
    _refused(
        await stranger.post(f"/webchat/api/{chat}/messages", json={"text": "/start"}, headers=zh), "对话"
    )
    photo = {"file": ("x.png", io.BytesIO(b"\x89PNG"), "image/png")}
    _refused(await stranger.post(f"/webchat/api/{chat}/photos", files=photo, headers=zh), "对话")
    _refused(await stranger.get(file_url, headers={"Accept-Language": "en"}), "chat")
    assert len(await farmer.history()) == before, "nothing reached the victim's chat"


async def test_a_forged_or_other_chats_or_expired_cookie_is_refused(
    farmer: ChatUser, stranger: httpx.AsyncClient
) -> None:
    await farmer.say("/start")
    sessions = WebChatSessions(SECRET_KEY)
    url = f"/webchat/api/{farmer.chat_id}/messages"
    own = sessions.issue("attacker-chat")
    cases = {
        "another chat's session": own,
        "the chat id put into another chat's session": own.replace("attacker-chat", farmer.chat_id),
        "a session signed with another key": WebChatSessions("not-the-key").issue(farmer.chat_id),
        "a bare chat id": farmer.chat_id,
        "an expired session": sessions.issue(farmer.chat_id, now=time.time() - MAX_AGE_SECONDS - 10),
    }
    for case, value in cases.items():
        response = await stranger.get(url, headers={"cookie": f"{COOKIE_NAME}={value}"})
        assert response.status_code == 403, case
    genuine = await stranger.get(url, headers={"cookie": f"{COOKIE_NAME}={sessions.issue(farmer.chat_id)}"})
    assert genuine.status_code == 200 and genuine.json()["messages"]


async def test_the_server_picks_a_new_chat_and_its_cookie_opens_it(stranger: httpx.AsyncClient) -> None:
    opened = await stranger.post("/webchat/api/chats")
    assert opened.status_code == 200
    chat_id, new = opened.json()["chat_id"], opened.json()["new"]
    assert new and re.fullmatch(r"w[0-9a-f]{32}", chat_id)
    cookie = opened.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    assert f"max-age={MAX_AGE_SECONDS}" in cookie.lower() and "secure" not in cookie.lower()
    first = await stranger.post(f"/webchat/api/{chat_id}/messages", json={"text": "/start"})
    assert first.status_code == 200 and first.json()["replies"]
    again = await stranger.post("/webchat/api/chats")
    assert again.json() == {"chat_id": chat_id, "new": False}, "the browser's session keeps its chat"


async def test_the_cookie_is_secure_over_https(embedded: FastAPI) -> None:
    transport = httpx.ASGITransport(app=embedded)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        opened = await client.post("/webchat/api/chats")
    assert "secure" in opened.headers["set-cookie"].lower()


async def test_the_page_comes_with_its_chat_and_keeps_it(stranger: httpx.AsyncClient) -> None:
    def config(page: httpx.Response) -> dict[str, object]:
        found = re.search(r'<script type="application/json" id="tb-config">(.*?)</script>', page.text)
        assert found
        return dict(json.loads(found.group(1)))

    first = await stranger.get("/chat")
    assert first.headers["cache-control"] == "no-store"
    made = config(first)
    assert made["chat_new"] is True and isinstance(made["chat_id"], str)
    again = config(await stranger.get("/chat"))
    assert again == {**made, "chat_new": False}
    history = await stranger.get(f"/webchat/api/{made['chat_id']}/messages")
    assert history.status_code == 200


async def test_a_session_in_use_is_renewed(farmer: ChatUser, stranger: httpx.AsyncClient) -> None:
    await farmer.say("/start")
    sessions = WebChatSessions(SECRET_KEY)
    url = f"/webchat/api/{farmer.chat_id}/messages"
    fresh = await stranger.get(url, headers={"cookie": f"{COOKIE_NAME}={sessions.issue(farmer.chat_id)}"})
    assert "set-cookie" not in fresh.headers, "a fresh session is not re-issued on every request"
    old = sessions.issue(farmer.chat_id, now=time.time() - 2 * 86400)
    renewed = await stranger.get(url, headers={"cookie": f"{COOKIE_NAME}={old}"})
    grant = sessions.read(renewed.cookies[COOKIE_NAME])
    assert grant is not None and grant.chat_id == farmer.chat_id and time.time() - grant.issued_at < 60
