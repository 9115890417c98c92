"""The web chat harness: real dispatcher, real backend (in-process ASGI), real templates.

A test talks as a user would (text, button taps, shared contact) and asserts what the user would see.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from bot.channels.webchat.access import COOKIE_NAME, WebChatSessions

# The chat a web chat request is for (its session cookie must name it).
_CHAT_PATH = re.compile(r"^/webchat/(?:api|files)/([A-Za-z0-9_-]{1,64})/")
_HOOKED = "_tianbao_webchat_sessions"


def default_secret_key() -> str:
    """The secret every test app and test server is built with (``tests/conftest.py``)."""
    from tests.conftest import SECRET_KEY  # here, not at import: conftest imports this module

    return SECRET_KEY


def session_hook(secret_key: str | None = None) -> Callable[[httpx.Request], Awaitable[None]]:
    """An httpx request hook that gives each web chat request the session of the chat in its path,
    as the browser that the server gave that chat would: tests name their chats ("farmer-wang"),
    the server never would, so the harness signs their sessions with the test secret."""
    sessions = WebChatSessions(secret_key or default_secret_key())

    async def add_session(request: httpx.Request) -> None:
        found = _CHAT_PATH.match(request.url.path)
        if found is None:
            return
        others = [
            part.strip()
            for part in request.headers.get("cookie", "").split(";")
            if part.strip() and not part.strip().startswith(f"{COOKIE_NAME}=")
        ]
        request.headers["cookie"] = "; ".join([*others, f"{COOKIE_NAME}={sessions.issue(found.group(1))}"])

    return add_session


def with_sessions(client: httpx.AsyncClient, secret_key: str | None = None) -> httpx.AsyncClient:
    """Install ``session_hook`` on a client once (every ChatUser of the client shares it)."""
    if not getattr(client, _HOOKED, False):
        hooks = client.event_hooks
        hooks["request"] = [*hooks.get("request", []), session_hook(secret_key)]
        client.event_hooks = hooks
        setattr(client, _HOOKED, True)
    return client


@dataclass
class Reply:
    id: int
    text: str
    buttons: list[list[dict[str, str]]]
    keyboard: list[list[dict[str, Any]]] | None
    document: dict[str, str] | None
    photo: dict[str, str] | None
    edited: bool

    def button_texts(self) -> list[str]:
        return [b["text"] for row in self.buttons for b in row]

    def button(self, text_part: str) -> dict[str, str]:
        for row in self.buttons:
            for button in row:
                if text_part in button["text"]:
                    return button
        raise AssertionError(f"no button containing {text_part!r} in {self.button_texts()}")


class ChatUser:
    """One person in web chat."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        chat_id: str,
        *,
        language_code: str = "zh-CN",
        first_name: str = "王大明",
        secret_key: str | None = None,
    ) -> None:
        # The client carries the chat's session from now on, raw requests of the test included.
        self.client = with_sessions(client, secret_key)
        self.chat_id = chat_id
        self.language_code = language_code
        self.first_name = first_name
        self.last: list[Reply] = []

    async def _post(self, body: dict[str, Any]) -> list[Reply]:
        body = {**body, "language_code": self.language_code, "first_name": self.first_name}
        response = await self.client.post(f"/webchat/api/{self.chat_id}/messages", json=body)
        assert response.status_code == 200, response.text
        self.last = [Reply(**r) for r in response.json()["replies"]]
        return self.last

    async def say(self, text: str) -> list[Reply]:
        return await self._post({"text": text})

    async def tap(self, text_part: str, replies: list[Reply] | None = None) -> list[Reply]:
        """Tap the inline button whose label contains ``text_part`` in the latest replies."""
        for reply in reversed(replies or self.last):
            for row in reply.buttons:
                for button in row:
                    if text_part in button["text"]:
                        return await self._post(
                            {"callback_data": button["callback_data"], "message_id": reply.id}
                        )
        raise AssertionError(f"no button {text_part!r} in {[r.button_texts() for r in self.last]}")

    async def share_contact(self, phone: str) -> list[Reply]:
        return await self._post({"contact": {"phone_number": phone}})

    async def share_location(self, latitude: float, longitude: float) -> list[Reply]:
        return await self._post({"location": {"latitude": latitude, "longitude": longitude}})

    async def history(self, after: int = 0) -> list[Reply]:
        response = await self.client.get(f"/webchat/api/{self.chat_id}/messages", params={"after": after})
        assert response.status_code == 200, response.text
        return [Reply(**m) for m in response.json()["messages"]]

    def text(self) -> str:
        return "\n".join(r.text for r in self.last)
