"""The web chat harness: real dispatcher, real backend (in-process ASGI), real templates.

A test talks as a user would (text, button taps, shared contact) and asserts what the user would see.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlmodel import col, select

from backend.db import Database
from backend.outbox.models import OutboxMessage
from backend.phone_codes.models import PhoneCode
from bot.channels.webchat.access import COOKIE_NAME, WebChatSessions
from bot.forms.steps import cn_mobile_digits

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


async def latest_text(db: Database, phone: str, kind: str) -> str:
    """The latest text of ``kind`` (otp, notice) to ``phone``, as the farmer reads it on their phone."""
    async with db.session() as session:
        row = (
            await session.exec(
                select(OutboxMessage)
                .where(OutboxMessage.channel == "sms", OutboxMessage.address == "+86" + phone)
                .where(OutboxMessage.kind == kind)
                .order_by(col(OutboxMessage.id).desc())
            )
        ).first()
    assert row is not None, f"no {kind} was texted"
    return row.text


async def texted_code(db: Database, phone: str) -> str:
    """The latest one-time code texted to ``phone``."""
    text = await latest_text(db, phone, "otp")
    found = re.search(r"\d{6}", text)
    assert found is not None, text
    return found.group(0)


async def age_phone_codes(db: Database, by: timedelta) -> None:
    """Move time: the stored codes were sent ``by`` earlier (the outbox rows too, for the per-number count)."""
    async with db.session() as session:
        for code in (await session.exec(select(PhoneCode))).all():
            code.created_at -= by
            code.expires_at -= by
        for text in (await session.exec(select(OutboxMessage).where(OutboxMessage.kind == "otp"))).all():
            text.created_at -= by
        await session.commit()


def asks_for_code(text: str) -> bool:
    """The reply asks for the texted code (start/phone_code_sent, enroll/phone_code_wait)."""
    return any(words in text for words in ("6 位", "6-digit", "6 digits"))


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

    async def share_proved_contact(self, phone: str) -> list[Reply]:
        """Share the number, then type the code texted to it, as the farmer reads it on their phone
        (web chat proves a number by its code, unless this chat proved it before)."""
        replies = await self.share_contact(phone)
        if not asks_for_code(replies[-1].text):
            return replies
        digits = cn_mobile_digits(phone)
        database = self.database()
        if database is None:
            return await self.say(await self.code_on_dev_page(digits))
        return await self.say(await texted_code(database, digits))

    async def code_on_dev_page(self, phone: str) -> str:
        """The code as ``/dev/sms`` shows it (a server in another process, its worker texting through
        the log provider): the newest line for the masked number."""
        masked = f"{phone[:3]}****{phone[-4:]}"
        for _ in range(100):
            page = (await self.client.get("/dev/sms")).text
            for line in page.split("<li>"):
                found = re.search(r"\d{6}", line.split("</small>")[-1]) if masked in line else None
                if found:
                    return found.group(0)
            await asyncio.sleep(0.1)
        raise AssertionError(f"no code for {masked} on /dev/sms")

    def database(self) -> Database | None:
        """The database of the in-process app this chat talks to, where its texts wait in the outbox
        (None for a server in another process)."""
        app = getattr(self.client._transport, "app", None)
        db = getattr(getattr(app, "state", None), "db", None)
        return db if isinstance(db, Database) else None

    async def share_location(self, latitude: float, longitude: float) -> list[Reply]:
        return await self._post({"location": {"latitude": latitude, "longitude": longitude}})

    async def history(self, after: int = 0) -> list[Reply]:
        response = await self.client.get(f"/webchat/api/{self.chat_id}/messages", params={"after": after})
        assert response.status_code == 200, response.text
        return [Reply(**m) for m in response.json()["messages"]]

    def text(self) -> str:
        return "\n".join(r.text for r in self.last)
